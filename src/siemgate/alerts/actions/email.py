"""Email action over SMTP (settings smtp_*): plain text, one message to all recipients.
SMTP 4xx replies and connection failures are retried; 5xx replies are not."""

from __future__ import annotations

import contextlib
import io
import smtplib
import socket
import ssl
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from siemgate.alerts.actions.base import DeliveryError, one_line, text, title
from siemgate.config import HELO_NAME, Settings
from siemgate.outbound import connect_tcp, time_left
from siemgate.store.base import DeliveryRecord

_UNSET = "unset.invalid"  # given to smtplib so that it looks nothing up; replaced once connected


class _DeadlineReader(io.RawIOBase):
    """Reads `sock` giving each read only the time left before `deadline` (time.monotonic()):
    TimeoutError once it has passed, however slowly the bytes come."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock, self._deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(time_left(self._deadline))
        return self._sock.recv_into(buffer)


def local_name(sock: socket.socket | None) -> str:
    """What siemgate calls itself in EHLO when `smtp_helo_name` is not set, found without DNS: the
    host name when it has a dot (a domain name, as smtplib prefers), else the address literal of
    the connection's local end (`[192.0.2.1]`, `[IPv6:2001:db8::1]`, RFC 5321). smtplib looked it
    up (socket.getfqdn, gethostbyname): a resolver that does not answer held the delivery for its
    timeout times its retries, outside the delivery's deadline."""
    name = socket.gethostname()
    if "." in name and HELO_NAME.fullmatch(name):
        return name
    address = str(sock.getsockname()[0]) if sock is not None else "127.0.0.1"
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


class _SMTP(smtplib.SMTP):
    """smtplib.SMTP whose whole session ends by one `deadline` (time.monotonic(), set before
    connecting): the name lookup, the connection, TLS and every command and reply. smtplib gives
    each socket operation its timeout again, so a server answering every command slowly, or a byte
    at a time, held a delivery far past its timeout (and its lease: it was sent twice). It names
    itself `helo_name`, else `local_name`: it never looks its own name up in DNS."""

    def __init__(self, deadline: float, host: str, port: int, helo_name: str | None, **kwargs: Any) -> None:
        self.deadline = deadline
        super().__init__(host, port, local_hostname=helo_name or _UNSET, **kwargs)
        if not helo_name:
            self.local_hostname = local_name(self.sock)

    def __exit__(self, *args: object) -> None:
        """QUIT, a failure of it ignored: once the message was accepted, a QUIT that fails or comes
        late must not fail the delivery (it would be sent again)."""
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.quit()
        self.close()

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return connect_tcp(None, host, port, self.deadline)  # its timeout: what is left

    def send(self, s: Any) -> None:
        if self.sock is not None:
            self.sock.settimeout(time_left(self.deadline))
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:  # a new connection, or a new TLS layer
            self.file = io.BufferedReader(_DeadlineReader(self.sock, self.deadline))
        reply = super().getreply()
        if self.sock is not None:  # what a STARTTLS handshake after this reply may take (it reads alone)
            self.sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
        return reply


class _SMTPS(smtplib.SMTP_SSL, _SMTP):
    """smtplib.SMTP_SSL bounded as _SMTP is (SMTP_SSL wraps the socket _SMTP makes)."""

    def __init__(self, deadline: float, host: str, port: int, helo_name: str | None, **kwargs: Any) -> None:
        self.deadline = deadline
        # which calls SMTP.__init__, not _SMTP's
        smtplib.SMTP_SSL.__init__(self, host, port, local_hostname=helo_name or _UNSET, **kwargs)
        if not helo_name:
            self.local_hostname = local_name(self.sock)


class EmailSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def message(self, alert: dict[str, Any], action: dict[str, Any]) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.settings.smtp_from
        msg["To"] = ", ".join(action["to"])
        msg["Subject"] = one_line(action.get("subject") or title(alert))
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
        deadline = time.monotonic() + s.smtp_timeout  # the whole attempt
        try:
            if s.smtp_security == "tls":
                client: _SMTP = _SMTPS(
                    deadline,
                    s.smtp_host,
                    s.smtp_port,
                    s.smtp_helo_name,
                    timeout=s.smtp_timeout,
                    context=ssl.create_default_context(),
                )
            else:
                client = _SMTP(deadline, s.smtp_host, s.smtp_port, s.smtp_helo_name, timeout=s.smtp_timeout)
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
