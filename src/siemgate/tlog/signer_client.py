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

from siemgate.tlog.answers import AnswerError, read_answer
from siemgate.tlog.signer import SignerRefused, StaleBase

MAX_ANSWER_BYTES = 1 << 20  # a note, a key file or an error is a few kB: more is not the signer's API


class SignerUnavailable(Exception):
    """The signer could not be reached, failed, or answered what its API never does; ingest goes
    on and checkpoints catch up later."""


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
            return resp.status, read_answer(resp, MAX_ANSWER_BYTES)
        except AnswerError as exc:
            raise SignerUnavailable(f"the signer at {self._where()} {exc}") from None
        except (OSError, http.client.HTTPException) as exc:  # unreachable, or an answer that is not HTTP
            where = self._where()
            raise SignerUnavailable(f"the signer at {where} is unreachable or answered not in HTTP: {exc!r}") from None
        finally:
            conn.close()

    def _where(self) -> str:
        return f"{self._host}:{self._port}"

    def _text(self, payload: bytes) -> str:
        try:
            return payload.decode()
        except UnicodeDecodeError:
            raise SignerUnavailable(f"the signer at {self._where()} answered text that is not UTF-8") from None

    def _json(self, payload: bytes, *fields: str) -> dict[str, Any]:
        """The answer's JSON object, which must hold `fields`; SignerUnavailable otherwise."""
        try:
            data = json.loads(payload)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(f in data for f in fields):
            raise SignerUnavailable(f"the signer at {self._where()} answered JSON its API does not have")
        return data

    @staticmethod
    def _error(status: int, payload: bytes) -> str:
        try:
            message = json.loads(payload).get("error")
        except (ValueError, AttributeError):
            message = None
        return str(message or f"HTTP {status}")[:500]  # into logs and alarms: a line, not a page

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
            return self._text(payload)
        if status == 409:
            size = self._json(payload, "size")["size"]
            if type(size) is not int:
                raise SignerUnavailable(f"the signer at {self._where()} answered a conflict without its size")
            raise StaleBase(self._error(status, payload), size)
        if status >= 500:
            raise SignerUnavailable(f"the signer failed: HTTP {status}: {self._error(status, payload)}")
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
        data = self._json(payload, "recovery", "checkpoint")
        return str(data["recovery"]), str(data["checkpoint"])

    def checkpoint(self, origin: str) -> str | None:
        """The last checkpoint signed for `origin`, or None."""
        status, payload = self._request("GET", f"/v1/checkpoint?origin={quote(origin, safe='')}")
        if status == 404:
            return None
        if status != 200:
            raise SignerRefused(self._error(status, payload), status)
        return self._text(payload)

    def health(self) -> None:
        """Returns when the signer answers its health check; SignerUnavailable otherwise."""
        status, _ = self._request("GET", "/v1/health")
        if status != 200:
            raise SignerUnavailable(f"the signer at {self._where()} answered its health check with {status}")

    def keys(self) -> str:
        """The public key file text."""
        status, payload = self._request("GET", "/v1/keys")
        if status != 200:
            raise SignerRefused(self._error(status, payload), status)
        return self._text(payload)
