"""Shared plumbing of the HTTP sinks: one httpx client, gzip, and the common status classification.

| status | outcome |
|---|---|
| the sink's success statuses (2xx) | acknowledged |
| 401, 403 | SinkAuthError: retried with backoff and reported (the data is fine, the credential is not) |
| 408, 429, 5xx | SinkRetryable, honouring `Retry-After` |
| 413 | SinkPoison: the batch is split until the record that is too large is alone, then dead-lettered |
| other 4xx | SinkPoison |
| 3xx | SinkRetryable, reported: the URL is probably wrong |
| network errors, timeouts | SinkRetryable |
"""

from __future__ import annotations

import gzip
import ssl
from collections.abc import Iterable
from typing import ClassVar, Literal

import httpx
from pydantic import Field, PositiveFloat

from siemgate import __version__
from siemgate.forward.backoff import parse_retry_after
from siemgate.forward.errors import SinkAuthError, SinkPoison, SinkRetryable
from siemgate.forward.formats import Formatter
from siemgate.forward.sinks.base import BatchLimits, CaFile, Sink, SinkConfig
from siemgate.outbound.http import BoundedClient

USER_AGENT = f"siemgate-forwarder/{__version__}"
MAX_REPLY_BYTES = 32 * 1024 * 1024  # what an intake's reply may hold (a bulk reply lists every item)


class HttpSinkConfig(SinkConfig):
    """Settings of every HTTP sink."""

    timeout: PositiveFloat = Field(60.0, description="Seconds for one request.")
    ca_file: CaFile | None = Field(None, description="CA bundle for the destination's certificate.")
    tls_verify: bool = Field(True, description="Check the destination's certificate (keep on).")
    compression: Literal["gzip", "none"] | None = Field(None, description="Default: gzip where supported.")

    supports_gzip: ClassVar[bool] = True

    def gzip(self) -> bool:
        if self.compression is None:
            return self.supports_gzip
        if self.compression == "gzip" and not self.supports_gzip:
            raise ValueError(f"{self.type} does not accept gzip bodies")
        return self.compression == "gzip"

    def verify(self) -> bool | ssl.SSLContext:
        if not self.tls_verify:
            return False
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else True


class HttpSink(Sink):
    """A sink that POSTs batches over HTTP(S)."""

    ok_statuses: ClassVar[frozenset[int]] = frozenset({200, 201, 202, 204})

    def __init__(self, name: str, formatter: Formatter, limits: BatchLimits, config: HttpSinkConfig) -> None:
        super().__init__(name, formatter, limits)
        self.gzip = config.gzip()
        self.http = BoundedClient(
            total=config.timeout,
            max_reply=MAX_REPLY_BYTES,
            timeout=config.timeout,
            verify=config.verify(),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    def post(
        self, url: str, body: bytes, headers: dict[str, str], *, params: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST `body` (gzipped when enabled). Raises SinkRetryable on network errors and timeouts."""
        if self.gzip:
            body = gzip.compress(body, compresslevel=6)
            headers = {**headers, "Content-Encoding": "gzip"}
        try:
            return self.http.post(url, content=body, headers=headers, params=params)
        except httpx.TransportError as exc:
            raise SinkRetryable(f"cannot reach {where(url)}: {type(exc).__name__}: {exc}") from None

    def check(self, response: httpx.Response, ok: Iterable[int] | None = None) -> None:
        """Raise the SinkError the status calls for (module docstring); return on success."""
        status = response.status_code
        if status in (self.ok_statuses if ok is None else frozenset(ok)):
            return
        said = response.text[:300].strip()
        at = where(str(response.request.url))
        if status in (401, 403):
            raise SinkAuthError(f"{at} refused the credential ({status} {said}); fix the sink's secret", status)
        if status in (408, 429) or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise SinkRetryable(f"{at} answered {status} {said}".rstrip(), status, retry_after)
        if status == 413:
            raise SinkPoison(f"{at} refused the request as too large (413)", status)
        if 300 <= status < 400:
            location = response.headers.get("location", "?")
            raise SinkRetryable(f"{at} redirects to {where(location)} ({status}); fix the url", status)
        raise SinkPoison(f"{at} refused the data ({status} {said})".rstrip(), status)

    def reachable(self, url: str, method: str = "HEAD", *, authenticated: bool = True) -> list[str]:
        """A health check for intakes without a health endpoint: the host answers HTTP at all.

        With `authenticated` (the URL itself carries the credential), 401/403 are reported."""
        try:
            response = self.http.request(method, url, auth=None)
        except httpx.TransportError as exc:
            return [f"cannot reach {where(url)}: {type(exc).__name__}: {exc}"]
        if not authenticated:
            return []
        if response.status_code in (401, 403):
            return [f"{where(url)} refused the credential ({response.status_code})"]
        if response.status_code == 404:
            return [f"{where(url)} answered 404: check the url"]
        return []


def where(url: str) -> str:
    """scheme://host[:port]/path of a URL for messages: without query string or user info, and with
    long path segments elided (which may hold secrets)."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    # Intakes such as Sumo Logic and Rapid7 carry their secret in the path: hide long segments.
    path = "/".join(part if len(part) <= 20 else "…" for part in parsed.path.split("/"))
    return f"{parsed.scheme}://{parsed.host}{port}{path}"
