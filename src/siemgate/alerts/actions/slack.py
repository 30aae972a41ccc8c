"""Slack-compatible incoming webhook action: POST {"text", "blocks"} (Slack, Mattermost,
Rocket.Chat and others accept this shape). Slack answers 200 "ok"; anything else is a failure."""

from __future__ import annotations

from typing import Any

from siemgate.alerts.actions.base import post, title
from siemgate.outbound import OutboundPolicy
from siemgate.store.base import DeliveryRecord


def mrkdwn(text: str) -> str:
    """`text` shown as itself in Slack's mrkdwn: &, < and > escaped, so that a value taken from an
    event (a name, a typed address) cannot ping a channel (`<!channel>`), mention someone or hide a
    link behind words (`<https://...|words>`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(alert: dict[str, Any]) -> dict[str, Any]:
    fields = [
        f"*Rule:* {mrkdwn(alert['rule']['name'])} (`{mrkdwn(alert['rule']['id'])}`)",
        f"*Severity:* {alert['rule']['severity']}",
        f"*Account:* {mrkdwn(alert['account']['name'])}",
        f"*Fired:* {alert['fired_at']}",
    ]
    if alert.get("group"):
        fields.append("*Group:* " + mrkdwn(", ".join(f"{k}={v}" for k, v in alert["group"].items())))
    summary = mrkdwn(alert["summary"])
    return {
        "text": f"{mrkdwn(title(alert))}: {summary}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title(alert)[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": summary[:3000]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"alert {alert['id']}"}]},
        ],
    }


class SlackSender:
    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    def __call__(self, alert: dict[str, Any], action: dict[str, Any], delivery: DeliveryRecord) -> None:
        post(self.policy, action["url"], action.get("timeout", 10.0), "the Slack webhook", json=slack_message(alert))
