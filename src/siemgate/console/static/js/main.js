/* The console's entry point: start the behaviour of the page the server rendered
   (<body data-page>), then mark the body data-loaded (tests wait for it). */

import { alertsPage } from "./alerts.js";
import { body, labelCells, setStatus } from "./core.js";
import { dashboardPage } from "./dashboards.js";
import { explorerPage } from "./explorer.js";
import { integrationPage, integrationsPage, newIntegrationPage } from "./integrations.js";
import { membersPage } from "./members.js";
import { invitationBanner, joinPage, securityPage, signInPage } from "./identity.js";
import { topBar } from "./signin.js";

const PAGES = {
  "sign-in": signInPage,
  join: joinPage,
  security: securityPage,
  integrations: integrationsPage,
  "integration-new": newIntegrationPage,
  integration: integrationPage,
  members: membersPage,
  alerts: alertsPage,
  events: explorerPage,
  "dashboard-signins": () => dashboardPage("signins"),
  "dashboard-items": () => dashboardPage("items"),
  "dashboard-audit": () => dashboardPage("audit"),
};

topBar();
// Tables are drawn by each page's script; their cells get their column's name as they appear.
const main = document.querySelector("main");
if (main) new MutationObserver(() => labelCells(main)).observe(main, { childList: true, subtree: true });
const start = PAGES[body.dataset.page];
// Every signed-in page shows the invitations waiting for the person (identity.js).
Promise.all([start ? start() : null, invitationBanner()]).then(
  () => {
    body.dataset.loaded = "true";
  },
  (e) => setStatus(e.message || String(e), true),
);
