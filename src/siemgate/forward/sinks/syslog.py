"""Syslog: RFC 5424 messages over UDP (RFC 5426), TCP with octet counting (RFC 6587) or TLS
(RFC 5425) — for Blumira, Stellar Cyber, Rapid7 collectors and any syslog SIEM (docs/forwarding.md, "Syslog").

    <PRI>1 TIMESTAMP HOSTNAME siemgate PROCID <feature> [siemgate@32473 uuid="…" feature="…" source="…"] <JSON>

PRI is `facility` * 8 + severity: warning (4) for failed sign-ins, informational (6) otherwise.
TIMESTAMP is the event's, to the microsecond (RFC 5424 allows six fractional digits). MSG is the
record in the sink's format, as JSON (with a UTF-8 BOM when `bom` is on). The SD-ID uses the
documentation enterprise number 32473 unless `sd_id` names your own.

A message larger than `max_message_bytes` is dead-lettered rather than truncated. Syslog has no
application-level acknowledgement: "acknowledged" means written to the socket (TCP/TLS) or sent
(UDP). Before each batch the connection is checked for a close by the peer and re-opened, and a
failed write re-sends the whole batch on a new connection (duplicates possible). UDP may lose
messages silently; use TCP or TLS when every event matters (docs/forwarding.md).
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import orjson
from pydantic import AfterValidator, Field, PositiveFloat, PositiveInt, model_validator

from siemgate.forward.errors import SinkRetryable
from siemgate.forward.formats import Formatter
from siemgate.forward.formats.ecs import SUCCESS_CATEGORIES
from siemgate.forward.records import Record
from siemgate.forward.sinks.base import BatchLimits, CaFile, Item, Sink, SinkConfig, SinkContext
from siemgate.model.features import Feature
from siemgate.model.timestamps import TimestampError, format_ns, now_ns, parse_ns
from siemgate.outbound import connect_tcp, host_name, lookup

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8,
    "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip
DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514}
BOM = b"\xef\xbb\xbf"
SD_NAME = r"^[!#-<>-\\^-~]+$"  # RFC 5424 SD-NAME: printable US-ASCII but space, '"', '=' and ']'


class SyslogConfig(SinkConfig):
    type: Literal["syslog"]
    protocol: Literal["udp", "tcp", "tls"] = "tls"
    host: Annotated[str, AfterValidator(host_name)]
    port: int | None = Field(None, ge=1, le=65535, description="Default 514 (udp, tcp) or 6514 (tls).")
    facility: Literal[tuple(FACILITIES)] = "authpriv"  # type: ignore[valid-type]
    app_name: str = Field("siemgate", max_length=48)
    hostname: str | None = Field(None, max_length=255, description="Default: this machine's name.")
    sd_id: str = Field(
        "siemgate@32473",
        max_length=32,
        pattern=SD_NAME,
        description="RFC 5424 SD-ID: printable US-ASCII without space, '=', ']' or '\"'.",
    )
    bom: bool = False
    max_message_bytes: PositiveInt | None = Field(None, description="Default 2048 (udp) or 8192 (tcp, tls).")
    timeout: PositiveFloat = Field(30.0, description="Seconds for connecting and for each write.")
    ca_file: CaFile | None = None
    cert_file: Path | None = Field(None, description="Client certificate for mutual TLS.")
    key_file: Path | None = None
    tls_verify: bool = True
    server_name: str | None = Field(None, description="Name to check the certificate against; default host.")

    default_limits: ClassVar[BatchLimits] = BatchLimits(1000, 1_000_000, 0.5)

    @model_validator(mode="after")
    def _client_certificate(self) -> SyslogConfig:
        """cert_file (and key_file) load as a certificate chain with its key; raises ValueError."""
        if self.cert_file is None:
            if self.key_file is not None:
                raise ValueError("key_file is given without cert_file")
            return self
        try:
            ssl.create_default_context().load_cert_chain(self.cert_file, self.key_file)
        except ssl.SSLError as exc:
            why = f" ({exc.reason})" if exc.reason else ""
            raise ValueError(f"cert_file, key_file: not a PEM certificate and its private key{why}") from None
        except OSError as exc:
            where = exc.filename or self.cert_file
            raise ValueError(f"cert_file, key_file: cannot read {where}: {exc.strerror}") from None
        return self

    def build(self, name: str, context: SinkContext) -> Sink:
        return SyslogSink(name, self.formatter(), self.limits(), self, context.source)


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_token(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most `limit` characters, or '-'."""
    cleaned = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return cleaned or "-"


class SyslogSink(Sink):
    kind = "syslog"

    def __init__(self, name: str, formatter: Formatter, limits: BatchLimits, config: SyslogConfig, source: str) -> None:
        super().__init__(name, formatter, limits)
        self.config = config
        self.source = source
        self.port = config.port or DEFAULT_PORTS[config.protocol]
        self.max_message = config.max_message_bytes or (2048 if config.protocol == "udp" else 8192)
        self.facility = FACILITIES[config.facility]
        self.hostname = _header_token(config.hostname or socket.gethostname(), 255)
        self.app = _header_token(config.app_name, 48)
        self.procid = str(os.getpid())
        self._sock: socket.socket | None = None
        self._tls: ssl.SSLContext | None = None
        if config.protocol == "tls":
            ctx = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
            if not config.tls_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if config.cert_file:
                ctx.load_cert_chain(str(config.cert_file), str(config.key_file) if config.key_file else None)
            self._tls = ctx

    def describe(self) -> str:
        return f"syslog {self.config.protocol}://{self.config.host}:{self.port}"

    def encode(self, record: Record) -> bytes:
        e = record.event
        failed = record.feature is Feature.SIGNINATTEMPTS and e.get("category") not in SUCCESS_CATEGORIES
        pri = self.facility * 8 + (4 if failed else 6)
        try:
            ns = parse_ns(e.get("timestamp"))
        except TimestampError:
            ns = now_ns()
        seconds, fraction = divmod(ns, 1_000_000_000)
        stamp = f"{format_ns(seconds * 1_000_000_000)[:-1]}.{fraction // 1000:06d}Z"
        sd = (
            f'[{self.config.sd_id} uuid="{_sd_escape(record.uuid)}" feature="{record.feature.value}"'
            f' source="{_sd_escape(self.source)}"]'
        )
        head = f"<{pri}>1 {stamp} {self.hostname} {self.app} {self.procid} {record.feature.value} {sd} "
        message = head.encode() + (BOM if self.config.bom else b"") + orjson.dumps(self.formatter(record))
        if len(message) > self.max_message:
            raise ValueError(
                f"the syslog message is {len(message)} bytes, over max_message_bytes={self.max_message}"
                " (raise it if the receiver accepts larger messages)"
            )
        return message

    def send(self, batch: Sequence[Item]) -> None:
        try:
            if self.config.protocol == "udp":
                sock = self._connected()
                for item in batch:
                    sock.send(item.data)
            else:
                sock = self._connected()
                sock.sendall(b"".join(b"%d %s" % (len(item.data), item.data) for item in batch))
        except OSError as exc:
            self._close()
            raise SinkRetryable(f"syslog {self.describe()}: {type(exc).__name__}: {exc}") from None

    def _connected(self) -> socket.socket:
        if self._sock is not None and self.config.protocol != "udp" and self._peer_closed(self._sock):
            self._close()
        if self._sock is None:
            self._sock = self._open()
        return self._sock

    def _open(self) -> socket.socket:
        """A socket to the receiver (UDP: connected to its first address), opened within `timeout`:
        the name lookup, the connection and the TLS handshake together; each write then has
        `timeout` again. Raises OSError (TimeoutError past it)."""
        deadline = time.monotonic() + self.config.timeout
        if self.config.protocol == "udp":
            info = lookup(self.config.host, self.port, deadline, socket.SOCK_DGRAM)[0]
            sock = socket.socket(info[0], socket.SOCK_DGRAM)
            sock.connect(info[4])
            return sock
        raw = connect_tcp(None, self.config.host, self.port, deadline)  # its timeout: what is left
        try:
            name = self.config.server_name or self.config.host
            sock = raw if self._tls is None else self._tls.wrap_socket(raw, server_hostname=name)
        except OSError:
            raw.close()
            raise
        sock.settimeout(self.config.timeout)
        return sock

    @staticmethod
    def _peer_closed(sock: socket.socket) -> bool:
        """True when the receiver closed the connection (or reset it) since the last write; the
        socket keeps its timeout."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            timeout = sock.gettimeout()
            sock.setblocking(False)
            try:
                return sock.recv(4096) == b""
            finally:
                sock.settimeout(timeout)
        except ssl.SSLWantReadError:
            return False
        except OSError:
            return True

    def _close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            try:
                if isinstance(sock, ssl.SSLSocket):
                    sock.settimeout(2)
                    sock.unwrap()
            except OSError:
                pass
            sock.close()

    def health(self) -> list[str]:
        try:
            if self.config.protocol == "udp":
                lookup(self.config.host, self.port, time.monotonic() + self.config.timeout, socket.SOCK_DGRAM)
                return []
            sock = self._open()
        except (OSError, ssl.SSLError) as exc:
            return [f"cannot connect to {self.describe()}: {exc}"]
        try:
            if isinstance(sock, ssl.SSLSocket):
                sock.settimeout(2)
                sock.unwrap()
        except OSError:
            pass
        sock.close()
        return []

    def close(self) -> None:
        self._close()
