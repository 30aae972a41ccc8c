"""The public address: the one scheme://host[:port] SIEMs use to reach siemgate, and what is wrong
with it for a given SIEM (docs/setup.md, "The public address")."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class PublicAddress:
    scheme: str  # http or https
    host: str  # lower case, IPv6 without brackets
    port: int | None  # None: the scheme's default port

    @property
    def audience(self) -> str:
        """host[:port] as tokens carry it (`aud`); the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.audience}"

    @property
    def https(self) -> bool:
        return self.scheme == "https"

    def _ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    @property
    def local_only(self) -> bool:
        """Loopback (127.0.0.0/8, ::1, localhost) or unspecified (0.0.0.0, ::): no other machine connects to it."""
        ip = self._ip()
        if ip is None:
            return self.host == "localhost" or self.host.endswith(".localhost")
        return ip.is_loopback or ip.is_unspecified

    @property
    def private(self) -> bool:
        """A private, link-local or otherwise non-global address (reachable on a local network only)."""
        ip = self._ip()
        if ip is None:
            return self.host.endswith((".local", ".internal", ".lan", ".home.arpa")) or "." not in self.host
        return not ip.is_global and not self.local_only


def parse_address(text: str) -> PublicAddress:
    """scheme://host[:port] (a trailing / allowed) -> PublicAddress. Raises ValueError saying what to fix."""
    example = "e.g. https://siemgate.example.com or http://10.0.0.5:8080"
    parts = urlsplit(text.strip())
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError(f"give the address with its scheme, http:// or https://, {example}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            f"give scheme://host[:port] only, without a path: SIEM connectors add /api/v2/... themselves ({example})"
        )
    if parts.username or parts.password:
        raise ValueError(f"the address cannot carry a user name or password ({example})")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"the port must be a number from 1 to 65535 ({example})") from None
    if port == 0:
        raise ValueError(f"the port must be a number from 1 to 65535 ({example})")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"the address needs a host name ({example})")
    if port == _DEFAULT_PORTS[parts.scheme]:
        port = None
    return PublicAddress(parts.scheme, host, port)
