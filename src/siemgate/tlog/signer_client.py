"""Client of the signer's HTTP API (src/siemgate/tlog/signer_http.py), standard library only.

It raises what the signer itself raises (src/siemgate/tlog/signer.py): StaleBase when the signer
last signed another size, SignerRefused (with the HTTP status) for anything it will not sign, so
callers handle an in-process and a remote signer alike; SignerUnavailable when it cannot be reached."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from siemgate.tlog.signer import SignerRefused, StaleBase


class SignerUnavailable(Exception):
    """The signer could not be reached or failed; ingest goes on and checkpoints catch up later."""


class SignerClient:
    """Talks to one signer at `url` (http://127.0.0.1:PORT) with a bearer secret."""

    def __init__(self, url: str, secret: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"signer URL {url!r} must look like http://127.0.0.1:8790")
        self._host, self._port = parts.hostname, parts.port or 80
        self._secret = secret.strip()
        self._timeout = timeout

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        headers = {"Authorization": f"Bearer {self._secret}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except OSError as exc:
            raise SignerUnavailable(f"the signer at {self._host}:{self._port} is unreachable: {exc}") from None
        finally:
            conn.close()

    @staticmethod
    def _error(status: int, payload: bytes) -> str:
        try:
            message = json.loads(payload).get("error")
        except (ValueError, AttributeError):
            message = None
        return str(message or f"HTTP {status}")

    def sign(self, origin: str, size: int, root: bytes, old_size: int, proof: Sequence[bytes]) -> str:
        """The signed checkpoint note; StaleBase, SignerRefused or SignerUnavailable."""
        status, payload = self._request(
            "POST",
            "/v1/sign",
            {
                "origin": origin,
                "size": size,
                "root": base64.b64encode(root).decode(),
                "old_size": old_size,
                "proof": [base64.b64encode(p).decode() for p in proof],
            },
        )
        if status == 200:
            return payload.decode()
        if status == 409:
            raise StaleBase(self._error(status, payload), int(json.loads(payload)["size"]))
        if status >= 500:
            raise SignerUnavailable(f"the signer failed: HTTP {status}")
        raise SignerRefused(self._error(status, payload), status)

    def recover(self, origin: str, size: int, root: bytes, reason: str) -> tuple[str, str]:
        """(recovery note, checkpoint note); needs the recovery secret."""
        status, payload = self._request(
            "POST",
            "/v1/recover",
            {"origin": origin, "size": size, "root": base64.b64encode(root).decode(), "reason": reason},
        )
        if status != 200:
            raise SignerRefused(self._error(status, payload), status)
        data = json.loads(payload)
        return str(data["recovery"]), str(data["checkpoint"])

    def checkpoint(self, origin: str) -> str | None:
        """The last checkpoint signed for `origin`, or None."""
        status, payload = self._request("GET", f"/v1/checkpoint?origin={quote(origin, safe='')}")
        if status == 404:
            return None
        if status != 200:
            raise SignerRefused(self._error(status, payload), status)
        return payload.decode()

    def health(self) -> None:
        """Returns when the signer answers its health check; SignerUnavailable otherwise."""
        status, _ = self._request("GET", "/v1/health")
        if status != 200:
            raise SignerUnavailable(f"the signer at {self._host}:{self._port} answered its health check with {status}")

    def keys(self) -> str:
        """The public key file text."""
        status, payload = self._request("GET", "/v1/keys")
        if status != 200:
            raise SignerRefused(self._error(status, payload), status)
        return payload.decode()
