/* The console's entry point: start the behaviour of the page the server rendered
   (<body data-page>), then mark the body data-loaded (tests wait for it). */

import { alertsPage } from "./alerts.js";
import { body, setStatus } from "./core.js";
import { dashboardPage } from "./dashboards.js";
import { explorerPage } from "./explorer.js";
import { integrationPage, integrationsPage, newIntegrationPage } from "./integrations.js";
import { membersPage } from "./members.js";
import { signInPage, topBar } from "./signin.js";

const PAGES = {
  "sign-in": signInPage,
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
const start = PAGES[body.dataset.page];
if (start) {
  Promise.resolve(start()).then(
    () => {
      body.dataset.loaded = "true";
    },
    (e) => setStatus(e.message || String(e), true),
  );
}
