"""Webhook action: a JSON POST signed as Standard Webhooks specify (webhook-id, webhook-timestamp,
webhook-signature = v1,base64(HMAC-SHA256(secret, "id.timestamp.body"))), signed with the
`standardwebhooks` library. The webhook-id is the delivery id, the same on every retry, so a
receiver can drop repeats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook

from siemgate.alerts.actions.base import DeliveryError, post, url_origin
from siemgate.outbound import OutboundPolicy
from siemgate.store.base import DeliveryRecord

EVENT_TYPE = "alert.fired"


def webhook_body(alert: dict[str, Any]) -> bytes:
    """The JSON body: {"type": "alert.fired", "timestamp", "data": alert}."""
    return orjson.dumps({"type": EVENT_TYPE, "timestamp": alert["fired_at"], "data": alert})


class WebhookSender:
    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    def __call__(self, alert: dict[str, Any], action: dict[str, Any], delivery: DeliveryRecord) -> None:
        body = webhook_body(alert)
        try:
            signer = Webhook(action["secret"])
        except Exception:
            raise DeliveryError(
                "the webhook secret is not valid base64 (whsec_...); make one with `siemgate alerts new-secret`",
                retryable=False,
            ) from None
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "siemgate-alerts",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(delivery.id, now, body.decode()),
        }
        url = action["url"]
        post(self.policy, url, action.get("timeout", 10.0), url_origin(url), content=body, headers=headers)
