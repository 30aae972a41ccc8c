"""Says once that a source or a sink is failing, not at each retry (docs/forwarding.md, "The delivery
contract", 6, and "A slow or failing sink")."""

from __future__ import annotations

import logging
import threading

from prometheus_client import Counter

log = logging.getLogger("siemgate.forward")


class Retries:
    """The retries of one source or sink: a WARNING at the first retry (an ERROR when the first one,
    or the first after other failures, is a refused credential, which needs the operator), DEBUG
    for the next ones (`counter` counts every one), and an INFO once a retried request is answered.
    `failing` is the reason while it fails (for /readyz), else None. `subject` starts each line
    ("source src", "sink es"); `extra` goes with each record. Thread-safe (a pipeline fetches a
    page ahead on a second thread)."""

    def __init__(self, name: str, subject: str, counter: Counter | None, extra: dict[str, str]) -> None:
        self.name = name
        self.subject = subject
        self.failing: str | None = None
        self._counter = counter
        self._extra = extra
        self._credential_said = False
        self._lock = threading.Lock()

    def retry(self, reason: str, delay: float, *, credential: bool = False) -> None:
        """Count and report a retry of `reason` in `delay` seconds; `credential` when the
        destination refused the credential."""
        if self._counter is not None:
            self._counter.inc()
        with self._lock:
            first, self.failing = self.failing is None, reason
            loud = credential and not self._credential_said
            self._credential_said = self._credential_said or credential
        if loud:
            level = logging.ERROR
        elif first:
            level = logging.WARNING
        else:
            level = logging.DEBUG
        more = "; further retries are logged at debug level until it answers" if level != logging.DEBUG else ""
        log.log(level, "%s: %s; retrying in %.1fs%s", self.subject, reason, delay, more, extra=self._extra)

    def recovered(self, what: str, retries: int) -> None:
        """`what` answered after `retries` retries: said once, if it was failing."""
        with self._lock:
            was, self.failing, self._credential_said = self.failing, None, False
        if was is not None:
            times = "retry" if retries == 1 else "retries"
            log.info("%s: %s answered after %d %s", self.subject, what, retries, times, extra=self._extra)
