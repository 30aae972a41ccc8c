"""The log's public keys as this server publishes them (`/.well-known/siemgate-log-keys`,
`siemgate log keys`): the configured public key file, or else the keys the signer reports, kept for
a few minutes and still served when the signer is briefly unreachable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from siemgate.config import Settings
from siemgate.errors import ConfigError, NotFound
from siemgate.tlog.keys import KeyFileError, PublicKeyring
from siemgate.tlog.signer import SignerRefused
from siemgate.tlog.signer_client import SignerClient, SignerUnavailable

CACHE_SECONDS = 300.0


def signer_client(settings: Settings) -> SignerClient | None:
    """A client for the configured signer, or None when none is configured; ConfigError if the
    URL or secret file is unusable."""
    if not settings.integrity_signer_url:
        return None
    path = settings.integrity_signer_secret_file
    if path is None:
        raise ConfigError("integrity_signer_url is set but integrity_signer_secret_file is not")
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read integrity_signer_secret_file {path}: {exc.strerror}") from None
    try:
        return SignerClient(settings.integrity_signer_url, secret)
    except ValueError as exc:
        raise ConfigError(f"integrity_signer_url: {exc}") from None


class LogKeys:
    """Where the public keys come from; thread-safe."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._file: Path | None = settings.integrity_public_key_file
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, PublicKeyring] | None = None

    def public(self) -> PublicKeyring:
        """The public keys; NotFound saying why when there are none to publish."""
        if self._file is not None:
            try:
                return PublicKeyring.load(self._file)
            except KeyFileError as exc:
                raise NotFound(f"the log's public key file cannot be read: {exc}") from None
        client = signer_client(self._settings)
        if client is None:
            raise NotFound("this server has no log signer (set integrity_signer_url; docs/integrity.md)")
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
            try:
                keys = PublicKeyring.parse(client.keys(), "the signer's keys")
            except (SignerUnavailable, SignerRefused, KeyFileError) as exc:
                if self._cached is not None:
                    return self._cached[1]
                raise NotFound(f"the log signer did not give its keys: {exc}") from None
            self._cached = (now, keys)
            return keys
