/* The Members page: who is in the account and their role; owners and administrators invite people
   (a code shown once), change roles and remove members through the admin API, which protects the
   last owner and keeps the owner role to owners (its refusals are shown in words). */

import { $, MANAGER, accountPath, api, apiAll, ask, busy, fmtTime, h, setStatus, showError, table } from "./core.js";

const ROLES = ["member", "administrator", "owner"];

function roleCell(m, reload) {
  if (!MANAGER) return h("td", {}, h("span", { class: "badge" }, m.role));
  const select = h(
    "select",
    { "aria-label": `Role of ${m.email}` },
    ROLES.map((r) => h("option", { value: r, selected: r === m.role }, r)),
  );
  select.addEventListener("change", async () => {
    try {
      await api("PATCH", accountPath(`/members/${encodeURIComponent(m.uuid)}`), { role: select.value });
      setStatus(`${m.email} is now ${select.value === "administrator" ? "an" : "a"} ${select.value}.`);
    } catch (e) {
      select.value = m.role;
      setStatus(e.message, true);
    }
    await reload();
  });
  return h("td", {}, select);
}

function removeButton(m, reload) {
  const button = h("button", { type: "button", class: "button small danger-outline", "aria-label": `Remove ${m.email}` }, "Remove");
  button.addEventListener("click", async () => {
    const choice = await ask({
      title: `Remove ${m.name || m.email}?`,
      content: [h("p", {}, `${m.email} loses access to this account at once. Their sign-in stays, for other accounts.`)],
      buttons: [
        { label: "Cancel", value: "" },
        { label: "Remove", value: "remove", kind: "danger" },
      ],
    });
    if (choice !== "remove") return;
    try {
      await api("DELETE", accountPath(`/members/${encodeURIComponent(m.uuid)}`));
      setStatus(`Removed ${m.email}.`);
    } catch (e) {
      setStatus(e.message, true);
    }
    await reload();
  });
  return button;
}

export async function membersPage() {
  const box = $("#members");
  const loadMembers = async () => {
    const members = await apiAll(accountPath("/members"));
    const headers = ["Name", "Email", "Role", "Joined", "Two-factor", ...(MANAGER ? ["Actions"] : [])];
    box.replaceChildren(
      table(
        headers,
        members.map((m) =>
          h(
            "tr",
            { dataset: { member: m.uuid } },
            h("td", {}, m.name),
            h("td", {}, m.email),
            roleCell(m, loadMembers),
            h("td", {}, fmtTime(m.joined_at)),
            h("td", {}, m.two_factor ? "Yes" : "No"),
            MANAGER ? h("td", {}, removeButton(m, loadMembers)) : null,
          ),
        ),
      ),
    );
    busy(box, false);
  };
  const invitationsBox = $("#invitations");
  const loadInvitations = async () => {
    if (!invitationsBox) return;
    const invitations = await apiAll(accountPath("/invitations"));
    invitationsBox.replaceChildren(
      invitations.length
        ? table(
            ["Email", "Role", "Status", "Expires", ""],
            invitations.map((i) => {
              const revoke =
                i.status === "pending"
                  ? h("button", { type: "button", class: "button small", "aria-label": `Revoke the invitation of ${i.email}`, onclick: async () => {
                      try {
                        await api("DELETE", accountPath(`/invitations/${encodeURIComponent(i.id)}`));
                        setStatus(`Revoked the invitation of ${i.email}.`);
                      } catch (e) {
                        setStatus(e.message, true);
                      }
                      await loadInvitations();
                    } }, "Revoke")
                  : "";
              return h("tr", { dataset: { invitation: i.id } }, h("td", {}, i.email), h("td", {}, i.role), h("td", {}, h("span", { class: "badge" }, i.status)), h("td", {}, fmtTime(i.expires_at)), h("td", {}, revoke));
            }),
          )
        : h("p", { class: "muted" }, "No invitations."),
    );
    busy(invitationsBox, false);
  };
  const form = $("#invite-form");
  if (form) {
    const error = $("#invite-error");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        const email = form.email.value.trim();
        const created = await api("POST", accountPath("/invitations"), { email, role: form.role.value });
        const shown = $("#invitation-code");
        $(".invitee", shown).textContent = email;
        $(".code", shown).textContent = created.code;
        $(".join-url", shown).textContent = created.join_url;
        $("#copy-invitation").onclick = () => navigator.clipboard.writeText(created.code).then(() => setStatus("Copied the invitation code."));
        shown.hidden = false;
        form.reset();
        await loadInvitations();
      } catch (e) {
        showError(error, e);
      }
    });
  }
  try {
    await Promise.all([loadMembers(), loadInvitations()]);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    busy(box, false);
    if (invitationsBox) busy(invitationsBox, false);
  }
}
