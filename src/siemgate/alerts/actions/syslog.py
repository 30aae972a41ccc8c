"""Syslog action: one RFC 5424 message over UDP, TCP or TLS (RFC 6587 octet counting on streams).

    <PRI>1 TIMESTAMP HOST siemgate PID ALERT [siemgate@32473 alert="..." rule="..." severity="..."] JSON

PRI = facility * 8 + severity (critical 2, high 3, medium 4, low 5). 32473 is the private
enterprise number RFC 5612 sets aside for examples. MSG is the alert as compact JSON (UTF-8,
no BOM) without the triggering event. The message is at most MAX_MESSAGE bytes, what receivers
take by default (RFC 5426 asks UDP receivers for 2048, RFC 5425 TLS ones for 8192): an alert
whose texts (a summary or group filled from event fields) make it longer is cut to fit, its long
texts and lists shortened and `"truncated": true` added, rather than cut by the receiver inside
the JSON, or, over 65,507 bytes, never sent over UDP.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from siemgate.alerts.actions.base import DeliveryError
from siemgate.outbound import OutboundPolicy, OutboundRefused, connect_tcp, time_left
from siemgate.store.base import DeliveryRecord

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8,
    "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14, "clock": 15,
    **{f"local{i}": 16 + i for i in range(8)},
}  # fmt: skip
SEVERITIES = {"critical": 2, "high": 3, "medium": 4, "low": 5}
ENTERPRISE = 32473
MAX_MESSAGE = {"udp": 2048, "tcp": 8192, "tls": 8192}
# Ever shorter: (characters a text keeps, items a list keeps), until the alert fits.
_CUTS = ((1024, 50), (256, 10), (64, 3), (32, 1))  # 32: ids (26) and timestamps (30) stay whole


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(alert: dict[str, Any], action: dict[str, Any], hostname: str | None = None) -> bytes:
    facility = FACILITIES.get(action.get("facility", "auth"))
    if facility is None:
        raise DeliveryError(
            f"unknown syslog facility {action.get('facility')!r}; use one of {', '.join(FACILITIES)}", retryable=False
        )
    pri = facility * 8 + SEVERITIES.get(alert["rule"]["severity"], 4)
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    host = (hostname or socket.gethostname() or "-")[:255]
    sd = (
        f'[siemgate@{ENTERPRISE} alert="{_sd_value(alert["id"])}" rule="{_sd_value(alert["rule"]["id"])}"'
        f' severity="{_sd_value(alert["rule"]["severity"])}" account="{_sd_value(alert["account"]["uuid"])}"]'
    )
    head = f"<{pri}>1 {now} {host} siemgate {os.getpid()} ALERT {sd} ".encode()
    body = {k: v for k, v in alert.items() if k != "event"}
    room = MAX_MESSAGE.get(action.get("protocol", "udp"), MAX_MESSAGE["udp"]) - len(head)
    return head + _fitted(body, room)


def _fitted(body: dict[str, Any], room: int) -> bytes:
    """`body` as JSON in at most `room` bytes: as it is, else with its texts and lists cut ever
    shorter (on a character, so no UTF-8 sequence or JSON escape is split) and "truncated": true.
    Raises DeliveryError (not retried) if even the shortest does not fit."""
    data = orjson.dumps(body)
    for chars, items in _CUTS:
        if len(data) <= room:
            return data
        data = orjson.dumps({**_cut(body, chars, items), "truncated": True})
    if len(data) <= room:
        return data
    raise DeliveryError(f"the alert does not fit a syslog message of {room} bytes even cut short", retryable=False)


def _cut(value: Any, chars: int, items: int) -> Any:
    """`value` with each text over `chars` characters cut to them (the last one "…") and each
    list over `items` items to its last ones (the latest events)."""
    if isinstance(value, str):
        return value if len(value) <= chars else value[: chars - 1] + "…"
    if isinstance(value, list):
        return [_cut(v, chars, items) for v in value[-items:]]
    if isinstance(value, dict):
        return {k: _cut(v, chars, items) for k, v in value.items()}
    return value


class SyslogSender:
    """Sends through the outbound policy (the checked address is the one used); TLS receivers are
    checked against the operator's CA file (settings alerts_syslog_ca_file) or the system CAs."""

    def __init__(self, policy: OutboundPolicy, ca_file: Path | None = None) -> None:
        self.policy = policy
        self.ca_file = ca_file

    def __call__(self, alert: dict[str, Any], action: dict[str, Any], delivery: DeliveryRecord) -> None:
        message = syslog_message(alert, action)
        host, port, protocol = action["host"], action.get("port", 514), action.get("protocol", "udp")
        timeout = action.get("timeout", 10.0)
        deadline = time.monotonic() + timeout  # the whole attempt: every address tried, TLS, sending
        try:
            if protocol == "udp":
                family, kind, proto, _, sockaddr = self.policy.resolve(host, port, deadline, socket.SOCK_DGRAM)[0]
                with socket.socket(family, kind, proto) as s:
                    s.settimeout(time_left(deadline))
                    s.sendto(message, sockaddr)
                return
            framed = b"%d %s" % (len(message), message)
            with connect_tcp(self.policy, host, port, deadline) as raw:
                if protocol == "tls":
                    context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
                    with context.wrap_socket(raw, server_hostname=host) as s:
                        s.settimeout(time_left(deadline))
                        s.sendall(framed)
                        with contextlib.suppress(OSError):
                            s.settimeout(time_left(deadline))
                            s.unwrap()  # close_notify first, so the receiver sees a clean end
                else:
                    raw.sendall(framed)
        except OutboundRefused as exc:
            raise DeliveryError(exc.message, retryable=False) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"the syslog receiver's certificate was refused: {exc.verify_message}", retryable=False
            ) from None
        except OSError as exc:
            raise DeliveryError(f"cannot send syslog to {host}:{port} over {protocol}: {exc}") from None
