"""Email action over SMTP (settings smtp_*): plain text, one message to all recipients.
SMTP 4xx replies and connection failures are retried; 5xx replies are not."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from siemgate.alerts.actions.base import DeliveryError, text, title
from siemgate.config import Settings
from siemgate.outbound import connect_tcp
from siemgate.store.base import DeliveryRecord


class _SMTP(smtplib.SMTP):
    """smtplib.SMTP whose connection, name lookup included, ends within its timeout (smtplib's
    socket.create_connection resolves the name without one); each later read or write has the
    timeout again, as smtplib gives it."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = connect_tcp(None, host, port, time.monotonic() + timeout)
        sock.settimeout(timeout)
        return sock


class _SMTPS(smtplib.SMTP_SSL, _SMTP):
    """smtplib.SMTP_SSL connecting as _SMTP does (SMTP_SSL wraps the socket _SMTP makes)."""


class EmailSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def message(self, alert: dict[str, Any], action: dict[str, Any]) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.settings.smtp_from
        msg["To"] = ", ".join(action["to"])
        msg["Subject"] = action.get("subject") or title(alert)
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid(domain="siemgate")
        msg["X-Siemgate-Alert"] = alert["id"]
        msg.set_content(text(alert))
        return msg

    def __call__(self, alert: dict[str, Any], action: dict[str, Any], delivery: DeliveryRecord) -> None:
        s = self.settings
        if not s.smtp_host:
            raise DeliveryError(
                "email is not configured: set SIEMGATE_SMTP_HOST (and SMTP_PORT, SMTP_FROM)", retryable=False
            )
        msg = self.message(alert, action)
        try:
            if s.smtp_security == "tls":
                client: smtplib.SMTP = _SMTPS(
                    s.smtp_host, s.smtp_port, timeout=s.smtp_timeout, context=ssl.create_default_context()
                )
            else:
                client = _SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
            with client:
                if s.smtp_security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if s.smtp_username:
                    password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                    client.login(s.smtp_username, password)
                client.send_message(msg, to_addrs=action["to"])
        except smtplib.SMTPResponseException as exc:
            reply = (
                exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            )
            raise DeliveryError(f"SMTP {exc.smtp_code}: {reply}", retryable=400 <= exc.smtp_code < 500) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"SMTP refused the recipients: {exc.recipients}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"cannot send email through {s.smtp_host}:{s.smtp_port}: {exc}") from None
