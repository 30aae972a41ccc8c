/* Words for the 1Password Events API's codes (every value of model/enums.py) and a sentence for
   each event, as 1Password's Activity Log reads. The codes stay in the event's JSON. */

import { known } from "./core.js";

const CATEGORIES = {
  success: "Signed in",
  credentials_failed: "Wrong password or Secret Key",
  mfa_failed: "Two-factor failed",
  sso_failed: "SSO failed",
  modern_version_failed: "Outdated app refused",
  firewall_failed: "Blocked by a firewall rule",
  firewall_reported_success: "Allowed (firewall in report mode)",
};

const TYPES = {
  credentials_ok: "Password and Secret Key accepted",
  mfa_ok: "Two-factor accepted",
  password_secret_bad: "Wrong password or Secret Key",
  mfa_missing: "Two-factor code missing",
  totp_disabled: "Authenticator app turned off",
  totp_bad: "Wrong authenticator code",
  totp_timeout: "Authenticator code timed out",
  u2f_disabled: "Security key turned off",
  u2f_bad: "Security key refused",
  u2f_timeout: "Security key timed out",
  duo_disabled: "Duo turned off",
  duo_bad: "Duo refused",
  duo_timeout: "Duo timed out",
  duo_native_bad: "Duo (native) refused",
  service_account_sso_denied: "Service account refused SSO",
  non_sso_user: "Not an SSO user",
  sso_user_mismatch: "SSO user mismatch",
  platform_secret_disabled: "Platform secret turned off",
  platform_secret_bad: "Platform secret refused",
  platform_secret_proxy: "Platform secret through a proxy",
  code_disabled: "Sign-in code turned off",
  code_bad: "Wrong sign-in code",
  code_timeout: "Sign-in code timed out",
  ip_blocked: "IP address blocked",
  continent_blocked: "Continent blocked",
  country_blocked: "Country blocked",
  anonymous_blocked: "Anonymous network blocked",
  all_blocked: "All sign-ins blocked",
  modern_version_missing: "App version missing",
  modern_version_old: "App version too old",
  federated: "Federated sign-in",
};

const ITEM_ACTIONS = {
  fill: "Filled",
  "select-sso-provider": "Chose an SSO provider",
  "enter-item-edit-mode": "Started editing",
  export: "Exported",
  share: "Shared",
  "secure-copy": "Copied securely",
  reveal: "Revealed",
  "server-create": "Created (server)",
  "server-update": "Updated (server)",
  "server-fetch": "Fetched (server)",
  other: "Used",
};

// Audit actions: [label, past-tense verb for sentences].
const AUDIT_ACTIONS = {
  activate: ["Activate", "activated"],
  addgsso: ["Add guest SSO", "added guest SSO to"],
  begin: ["Begin", "began"],
  beginr: ["Begin recovery", "began recovery of"],
  cancel: ["Cancel", "cancelled"],
  cancelr: ["Cancel recovery", "cancelled recovery of"],
  changeks: ["Change keyset", "changed the keyset of"],
  changela: ["Change language", "changed the language of"],
  changemp: ["Change password", "changed the password of"],
  changenm: ["Rename", "renamed"],
  changesk: ["Change Secret Key", "changed the Secret Key of"],
  chngasso: ["Change SSO (admins)", "changed admin SSO of"],
  chngdsso: ["Change SSO (default)", "changed default SSO of"],
  chngpsso: ["Change SSO (people)", "changed people's SSO of"],
  complete: ["Complete", "completed"],
  completr: ["Complete recovery", "completed recovery of"],
  convert: ["Convert", "converted"],
  create: ["Create", "created"],
  dealldev: ["Remove all devices", "removed all devices of"],
  delete: ["Delete", "deleted"],
  delgsso: ["Remove guest SSO", "removed guest SSO from"],
  delshare: ["Delete share", "deleted a share of"],
  deolddev: ["Remove old devices", "removed old devices of"],
  detchild: ["Detach child", "detached"],
  disblduo: ["Disable Duo", "turned off Duo for"],
  disblmfa: ["Disable MFA", "turned off two-factor for"],
  disblsso: ["Disable SSO", "turned off SSO for"],
  dlgsess: ["Delegate session", "delegated a session for"],
  dvrfydmn: ["Delete domain verification", "deleted the domain verification of"],
  enblduo: ["Enable Duo", "turned on Duo for"],
  enblmfa: ["Enable MFA", "turned on two-factor for"],
  enblsso: ["Enable SSO", "turned on SSO for"],
  expire: ["Expire", "expired"],
  export: ["Export", "exported"],
  grant: ["Grant", "granted"],
  hide: ["Hide", "hid"],
  join: ["Join", "joined"],
  launchi: ["Launch", "launched"],
  leave: ["Leave", "left"],
  musercom: ["Complete migration", "completed the migration of"],
  muserdec: ["Decline migration", "declined the migration of"],
  patch: ["Patch", "patched"],
  propose: ["Propose", "proposed"],
  provsn: ["Provision", "provisioned"],
  prsndall: ["Resend all invitations", "resent all invitations for"],
  purge: ["Purge", "purged"],
  rdmchild: ["Redeem child", "redeemed"],
  reactive: ["Reactivate", "reactivated"],
  reauth: ["Re-authenticate", "re-authenticated"],
  replace: ["Replace", "replaced"],
  resendts: ["Resend invitation", "resent the invitation of"],
  revoke: ["Revoke", "revoked"],
  role: ["Change role", "changed the role of"],
  sdvcsso: ["Set device SSO", "set device SSO for"],
  sendpkg: ["Send package", "sent a package to"],
  sendts: ["Send invitation", "sent an invitation to"],
  share: ["Share", "shared"],
  ssotknv: ["Verify SSO token", "verified"],
  suspend: ["Suspend", "suspended"],
  tdvcsso: ["Trust device (SSO)", "trusted a device for"],
  trename: ["Rename token", "renamed"],
  trevoke: ["Revoke token", "revoked"],
  trvlaway: ["Travel mode on", "turned on travel mode for"],
  trvlback: ["Travel mode off", "turned off travel mode for"],
  tverify: ["Verify token", "verified"],
  uisas: ["Unified sign-in", "changed unified sign-in of"],
  unhide: ["Unhide", "unhid"],
  unknown: ["Unknown action", "did something to"],
  unlink: ["Unlink", "unlinked"],
  updatduo: ["Update Duo", "updated Duo for"],
  update: ["Update", "updated"],
  updatea: ["Update attributes", "updated the attributes of"],
  updatfw: ["Update firewall", "updated the firewall of"],
  updatmfa: ["Update MFA", "updated two-factor for"],
  upguest: ["Promote guest", "promoted"],
  uvrfydmn: ["Unverify domain", "unverified"],
  verify: ["Verify", "verified"],
  view: ["View", "viewed"],
  vrfydmn: ["Verify domain", "verified"],
};

const OBJECT_TYPES = {
  account: "account",
  card: "payment card",
  cred: "passkey",
  device: "device",
  dlgdsess: "delegated session",
  ec: "email change",
  famchild: "family member",
  file: "file",
  gm: "group membership",
  group: "group",
  gva: "group vault access",
  invite: "invitation",
  item: "item",
  itemhist: "item history",
  items: "items",
  miguser: "migrated user",
  mngdacc: "managed account",
  pm: "payment method",
  report: "report",
  sa: "service account",
  satoken: "token",
  slackapp: "Slack app",
  sso: "SSO",
  ssotkn: "SSO token",
  sub: "subscription",
  template: "template",
  user: "user",
  uva: "user vault access",
  vault: "vault",
  vaultkey: "vault key",
};

const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** The words for a facet value of a stream (kind: category or action; detail: type or object type). */
export function facetLabel(feature, facet, code) {
  if (code === null || code === undefined || code === "") return "";
  if (feature === "signinattempts") return known(facet === "kind" ? CATEGORIES : TYPES, code) || code;
  if (feature === "itemusages") return facet === "kind" ? known(ITEM_ACTIONS, code) || code : code;
  if (facet === "kind") return (known(AUDIT_ACTIONS, code) || [code])[0];
  const type = known(OBJECT_TYPES, code);
  return type ? capital(type) : code;
}

/** Every code this module names, by stream and facet (for the test that checks none is missing). */
export const CATALOGUE = {
  signinattempts: { kind: Object.keys(CATEGORIES), detail: Object.keys(TYPES) },
  itemusages: { kind: Object.keys(ITEM_ACTIONS), detail: [] },
  auditevents: { kind: Object.keys(AUDIT_ACTIONS), detail: Object.keys(OBJECT_TYPES) },
};

const person = (details, fallback) => (details && (details.name || details.email)) || fallback;

/** The name an audit event gives its object: a person's name, or `name` in its aux_info JSON. */
function objectName(event) {
  if (event.object_details) return person(event.object_details, "");
  if (typeof event.aux_info === "string" && event.aux_info.startsWith("{")) {
    try {
      const info = JSON.parse(event.aux_info);
      if (info && typeof info.name === "string") return info.name;
    } catch {
      return "";
    }
  }
  return "";
}

/** One sentence saying what happened: "Alice revoked token “splunk-hf1”". */
export function sentence(feature, event) {
  if (feature === "signinattempts") {
    const who = person(event.target_user, "Someone");
    return event.category === "success" ? `${who} signed in` : `${who}: ${known(CATEGORIES, event.category) || event.category}`;
  }
  if (feature === "itemusages") {
    const verb = String(known(ITEM_ACTIONS, event.action) || event.action).toLowerCase();
    return `${person(event.user, "Someone")} ${verb} an item in vault ${event.vault_uuid}`;
  }
  const who = person(event.actor_details, event.actor_uuid ? `User ${event.actor_uuid}` : "siemgate");
  const verb = (known(AUDIT_ACTIONS, event.action) || [null, `did ${event.action} to`])[1];
  const what = known(OBJECT_TYPES, event.object_type) || event.object_type;
  const name = objectName(event);
  return `${who} ${verb} ${what}${name ? ` “${name}”` : ""}`;
}
