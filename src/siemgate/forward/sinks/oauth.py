"""OAuth 2.0 bearer tokens for the sinks whose intake wants one, as `httpx.Auth`: Microsoft Entra ID's
client-credentials grant (Sentinel) and Google's service-account JWT bearer grant (SecOps).

One cache for both: a token is used until a minute before it expires. A request the intake answers
401 is sent once more at once with a fresh token (the intake may have stopped accepting the cached
one before its stated expiry); a second 401 is the sink's to report. Token requests go through the
sink's own client, so its TLS settings and timeout apply.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Generator
from typing import Any

import httpx
import jwt
import orjson

from siemgate.forward.errors import SinkAuthError, SinkRetryable
from siemgate.forward.sinks.http import where

EXPIRY_MARGIN_SECONDS = 60


class BearerTokenAuth(httpx.Auth, abc.ABC):
    """A cached bearer token from a token endpoint; subclasses say what to send and who refused."""

    def __init__(self, client: httpx.Client, token_url: str, issuer: str) -> None:
        """Tokens are asked for through `client` (the sink's, whose requests this auth then signs:
        set `client.auth`); `issuer` names who issues them, for messages ("Entra ID", "Google")."""
        self.client = client
        self.token_url = token_url
        self.issuer = issuer
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    @abc.abstractmethod
    def grant(self) -> dict[str, str]:
        """The form posted to the token endpoint."""

    @abc.abstractmethod
    def refusal(self, response: httpx.Response) -> str:
        """What to fix when the token endpoint refuses the credential (4xx but 429)."""

    def token(self) -> str:
        """A valid access token, from the cache or fresh. Raises SinkRetryable (unreachable, 429,
        5xx) or SinkAuthError (the credential was refused)."""
        with self._lock:
            if self._token is not None and time.monotonic() < self._expires:
                return self._token
            self._token, self._expires = self._fetch()
            return self._token

    def forget(self, token: str) -> None:
        """Drop `token` from the cache (the intake refused it)."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> tuple[str, float]:
        try:
            response = self.client.request("POST", self.token_url, data=self.grant(), auth=None)
        except httpx.TransportError as exc:
            raise SinkRetryable(f"cannot reach {where(self.token_url)}: {type(exc).__name__}") from None
        status = response.status_code
        if status >= 500 or status == 429:
            raise SinkRetryable(f"{self.issuer} answered {status}", status)
        if status != 200:
            raise SinkAuthError(self.refusal(response), status)
        data = orjson.loads(response.content)
        return str(data["access_token"]), time.monotonic() + max(
            0, int(data.get("expires_in", 3600)) - EXPIRY_MARGIN_SECONDS
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self.forget(token)
            request.headers["Authorization"] = f"Bearer {self.token()}"
            yield request


class ClientCredentials(BearerTokenAuth):
    """Microsoft Entra ID, client-credentials grant."""

    def __init__(self, client: httpx.Client, token_url: str, client_id: str, client_secret: str, scope: str) -> None:
        super().__init__(client, token_url, "Entra ID")
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        }

    def grant(self) -> dict[str, str]:
        return self._form

    def refusal(self, response: httpx.Response) -> str:
        try:
            detail = orjson.loads(response.content).get("error_description", "")
        except (orjson.JSONDecodeError, AttributeError):
            detail = response.text[:200]
        return (
            f"Entra ID refused the client credentials ({response.status_code}: {str(detail)[:200]});"
            " check tenant_id, client_id and client_secret"
        )


class ServiceAccountJwt(BearerTokenAuth):
    """Google, JWT bearer grant of a service account's key (its client_email, private_key, token_uri)."""

    def __init__(self, client: httpx.Client, account: dict[str, str], scope: str) -> None:
        super().__init__(client, account["token_uri"], "Google")
        self.account = account
        self.scope = scope

    def grant(self) -> dict[str, str]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.account["client_email"],
            "scope": self.scope,
            "aud": self.account["token_uri"],
            "iat": now,
            "exp": now + 3600,
        }
        assertion = jwt.encode(claims, self.account["private_key"], algorithm="RS256")
        return {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}

    def refusal(self, response: httpx.Response) -> str:
        return f"Google refused the service account ({response.status_code}); check credentials_file"
