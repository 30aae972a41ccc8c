"""The SIEMs an integration can be for, with how to connect each one's 1Password connector."""

from __future__ import annotations

from dataclasses import dataclass

from siemgate.accounts.reach import address_warnings
from siemgate.address import PublicAddress
from siemgate.model.text import excerpt


@dataclass(frozen=True, slots=True)
class SiemType:
    key: str
    name: str
    connector: str
    url_from_token: bool  # the connector builds https://<token audience> instead of taking a URL
    fields: tuple[str, ...]
    steps: tuple[str, ...]
    cloud: bool = False  # the connector runs in the vendor's cloud: it needs an address the internet reaches

    def warnings(self, address: PublicAddress) -> list[str]:
        """What stops this SIEM from using `address`, each with what to change; [] when nothing."""
        return address_warnings(self.name, self.cloud, self.url_from_token, address)

    def guide(self, address: PublicAddress) -> dict[str, object]:
        """What to enter where, for this deployment, and what to fix first."""
        base_url, audience = address.url, address.audience
        if self.url_from_token:
            url_note = (
                f"This connector does not ask for a URL: it connects to https://{audience} (the token's audience)."
                " Set SIEMGATE_PUBLIC_URL to the https:// address your SIEM reaches siemgate by, serve HTTPS"
                " there, then issue the token."
            )
        else:
            url_note = f"Enter {base_url} where the connector asks for the Events API URL."
        return {
            "connector": self.connector,
            "base_url": base_url,
            "audience": audience,
            "url_from_token": self.url_from_token,
            "fields": list(self.fields),
            "steps": [step.format(base_url=base_url, audience=audience) for step in self.steps],
            "url_note": url_note,
            "warnings": self.warnings(address),
        }


SIEM_TYPES: dict[str, SiemType] = {
    t.key: t
    for t in (
        SiemType(
            "blumira",
            "Blumira",
            "Blumira Cloud Connector: 1Password",
            False,
            ("Events API URL", "Bearer token"),
            ("In Blumira, add a Cloud Connector for 1Password.", "Events API URL: {base_url}", "Paste the token."),
            cloud=True,
        ),
        SiemType(
            "crowdstrike",
            "CrowdStrike Falcon",
            "Falcon Next-Gen SIEM data connector: 1Password",
            False,
            ("Events API base URL", "API token"),
            ("In Falcon, open Data connectors and add 1Password.", "Base URL: {base_url}", "Paste the token."),
            cloud=True,
        ),
        SiemType(
            "datadog",
            "Datadog",
            "Datadog 1Password integration",
            False,
            ("Events API URL / host", "Bearer token"),
            ("In Datadog, open Integrations, 1Password.", "Host or URL: {base_url}", "Paste the token and save."),
            cloud=True,
        ),
        SiemType(
            "elastic",
            "Elastic",
            "Elastic Agent integration '1Password' (httpjson)",
            False,
            ("URL of 1Password Events API Server", "1Password Authorization Token"),
            (
                "In Kibana, add the 1Password integration to an agent policy.",
                "URL of 1Password Events API Server: {base_url}",
                "1Password Authorization Token: paste the token.",
            ),
        ),
        SiemType(
            "microsoft_sentinel",
            "Microsoft Sentinel",
            "Microsoft Sentinel solution '1Password' (codeless connector)",
            False,
            ("1Password Events API base URL", "API token"),
            (
                "In Sentinel, install the 1Password solution and open its data connector.",
                "Events API URL: {base_url}",
                "API token: paste the token.",
            ),
            cloud=True,
        ),
        SiemType(
            "panther",
            "Panther",
            "Panther 1Password log source",
            False,
            ("Events API host", "Bearer token"),
            ("In Panther, add a 1Password log source.", "Host: {base_url}", "Paste the token."),
            cloud=True,
        ),
        SiemType(
            "rapid7",
            "Rapid7 InsightIDR",
            "InsightIDR event source: 1Password",
            False,
            ("Events API URL", "API token credential"),
            ("In InsightIDR, add the 1Password event source.", "URL: {base_url}", "Store the token as a credential."),
        ),
        SiemType(
            "splunk",
            "Splunk",
            "1Password Events Reporting for Splunk (add-on)",
            True,
            ("Events API token",),
            (
                "Install the '1Password Events Reporting for Splunk' add-on.",
                "Open its setup page and paste the token; it connects to https://{audience}.",
            ),
        ),
        SiemType(
            "stellar_cyber",
            "Stellar Cyber",
            "Stellar Cyber connector: 1Password",
            False,
            ("Events API URL", "API token"),
            ("In Stellar Cyber, add a 1Password connector.", "URL: {base_url}", "Paste the token."),
        ),
        SiemType(
            "sumo_logic",
            "Sumo Logic",
            "Sumo Logic Cloud-to-Cloud source: 1Password",
            False,
            ("Base URL", "API token"),
            ("In Sumo Logic, add a 1Password Cloud-to-Cloud source.", "Base URL: {base_url}", "Paste the token."),
            cloud=True,
        ),
        SiemType(
            "other",
            "Other",
            "Any client of the 1Password Events API (scripts, Cribl, custom pollers, siemgate forward)",
            False,
            ("Events API URL", "Bearer token"),
            (
                "POST {base_url}/api/v2/signinattempts with 'Authorization: Bearer <token>' and a reset body,"
                " then send each reply's cursor back.",
            ),
        ),
    )
}


def siem_type(key: str) -> SiemType:
    """Raises ValueError naming the valid types."""
    try:
        return SIEM_TYPES[key]
    except KeyError:
        raise ValueError(f"unknown SIEM type {excerpt(key)}; use one of {', '.join(SIEM_TYPES)}") from None
