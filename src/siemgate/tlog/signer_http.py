"""The signer's HTTP API, served on a loopback address by `siemgate signer serve`
(docs/integrity.md, "The signer"). Standard library only, small on purpose.

Every request carries `Authorization: Bearer <secret>`: the signing secret for `/v1/sign` and
reads, the separate recovery secret for `/v1/recover` (the server is never given that one).

    POST /v1/sign        {"origin", "size", "root" (base64), "old_size", "proof": [base64...]}
                         200 text/plain signed checkpoint
                         409 {"error", "size"}: the signer last signed another size
                         422 {"error"}: not an extension of the signed tree; 403 foreign origin
    POST /v1/recover     {"origin", "size", "root", "reason"} (recovery secret)
                         200 {"recovery": note, "checkpoint": note}
    GET  /v1/checkpoint?origin=O   200 the last signed checkpoint, 404 if none
    GET  /v1/keys        200 the public key file
    GET  /v1/health      200 {"status": "ok"}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import threading
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from siemgate.tlog.httpd import BodyError, BoundedServer, Handler
from siemgate.tlog.signer import BadSignRequest, Signer, SignerRefused, StaleBase

MAX_BODY = 64 * 1024
MIN_SECRET = 32
log = logging.getLogger("siemgate.signer")


class _Server(BoundedServer):
    signer: Signer
    sign_secret: bytes
    recover_secret: bytes | None


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def check_secret(secret: str, what: str) -> str:
    """The secret stripped, if long enough; ValueError otherwise."""
    secret = secret.strip()
    if len(secret) < MIN_SECRET:
        raise ValueError(f"the {what} must be at least {MIN_SECRET} characters (siemgate signer init writes one)")
    return secret


def _b64_hash(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise BadSignRequest(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise BadSignRequest(f"{what} is not base64") from None


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadSignRequest(f"{key} must be an integer")
    return value


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise BadSignRequest(f"{key} must be a string")
    return value


class _Handler(Handler):
    server: _Server
    server_version = "siemgate-signer"
    log = log

    def _authorized(self, expected: bytes | None, what: str = "bearer secret") -> bool:
        """Whether the request carries the secret `expected` (None: the signer was started without
        a recovery secret, so no recovery is authorized); else answers 401 saying which secret."""
        if expected is None:
            why = "this signer has no recovery secret: restart it with --recovery-secret-file to sign recoveries"
            self.send_json(401, {"error": why})
            return False
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        ok = scheme == "Bearer" and hmac.compare_digest(_digest(token), expected)
        if not ok:
            self.send_json(401, {"error": f"missing or wrong {what}"})
        return ok

    def _body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.read_body(MAX_BODY))
        except BodyError as exc:
            raise BadSignRequest(str(exc)) from None
        except (ValueError, RecursionError):  # not UTF-8 or JSON, an integer of thousands of digits, deep nesting
            raise BadSignRequest("the request body is not JSON the signer takes") from None
        if not isinstance(body, dict):
            raise BadSignRequest("the request body must be a JSON object")
        return body

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/v1/health":
            self.send_json(200, {"status": "ok"})
            return
        if not self._authorized(self.server.sign_secret):
            return
        if url.path == "/v1/keys":
            self.send_text(self.server.signer.keyring.public().text())
        elif url.path == "/v1/checkpoint":
            origin = parse_qs(url.query).get("origin", [""])[0]
            state = self.server.signer.state(origin)
            if state is None:
                self.send_json(404, {"error": f"nothing signed for origin {origin!r}"})
            else:
                self.send_text(state.note)
        else:
            self.send_json(404, {"error": f"no such endpoint {url.path}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path not in ("/v1/sign", "/v1/recover"):
            self.send_json(404, {"error": f"no such endpoint {path}"})
            return
        if path == "/v1/recover":
            if not self._authorized(self.server.recover_secret, "recovery secret"):
                return
        elif not self._authorized(self.server.sign_secret):
            return
        signer = self.server.signer
        try:
            body = self._body()
            origin, size, root = _str(body, "origin"), _int(body, "size"), _b64_hash(body.get("root"), "root")
            if path == "/v1/sign":
                proof_raw = body.get("proof", [])
                if not isinstance(proof_raw, list):
                    raise BadSignRequest("proof must be a list of base64 hashes")
                proof = [_b64_hash(p, f"proof hash {i}") for i, p in enumerate(proof_raw)]
                self.send_text(signer.sign(origin, size, root, _int(body, "old_size"), proof))
            else:
                rec, cp = signer.recover(origin, size, root, _str(body, "reason"))
                log.warning("recovery signed for %s at size %d", origin, size)
                self.send_json(200, {"recovery": rec, "checkpoint": cp})
        except StaleBase as exc:
            self.send_json(exc.status, {"error": exc.message, "size": exc.size})
        except SignerRefused as exc:
            self.send_json(exc.status, {"error": exc.message})


def make_server(
    signer: Signer, host: str, port: int, sign_secret: str, recover_secret: str | None = None
) -> ThreadingHTTPServer:
    """An HTTP server for `signer` bound to a loopback address (ValueError for any other)."""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"the signer listens on a loopback address only, not {host}")
    server = _Server((host, port), _Handler)
    server.signer = signer
    server.sign_secret = _digest(check_secret(sign_secret, "signing secret"))
    server.recover_secret = _digest(check_secret(recover_secret, "recovery secret")) if recover_secret else None
    if recover_secret is not None and server.recover_secret == server.sign_secret:
        raise ValueError("the recovery secret must differ from the signing secret")
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="siemgate-signer", daemon=True)
    thread.start()
    return thread
