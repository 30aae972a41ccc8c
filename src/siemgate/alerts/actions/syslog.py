"""Syslog action: one RFC 5424 message over UDP, TCP or TLS (RFC 6587 octet counting on streams).

    <PRI>1 TIMESTAMP HOST siemgate PID ALERT [siemgate@32473 alert="..." rule="..." severity="..."] JSON

PRI = facility * 8 + severity (critical 2, high 3, medium 4, low 5). 32473 is the private
enterprise number RFC 5612 sets aside for examples. MSG is the alert as compact JSON (UTF-8,
no BOM) without the triggering event, so it stays well under common 8 KiB limits.
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
    body = {k: v for k, v in alert.items() if k != "event"}
    msg = orjson.dumps(body).decode()
    return f"<{pri}>1 {now} {host} siemgate {os.getpid()} ALERT {sd} {msg}".encode()


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
