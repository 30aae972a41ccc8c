"""Client of a witness's add-checkpoint API (c2sp.org/tlog-witness), standard library only.

`add_checkpoint` returns the witness's cosignature lines, or raises WitnessConflict (409: the
witness last cosigned another size, given in the exception), WitnessRefused (any other refusal,
with the HTTP status and the witness's reason) or WitnessUnavailable (unreachable, 5xx, an
answer over MAX_ANSWER_BYTES)."""

from __future__ import annotations

import base64
import http.client
from collections.abc import Sequence
from urllib.parse import urlsplit

from siemgate.tlog.answers import AnswerError, read_answer
from siemgate.tlog.witness import WitnessRefused

# A witness answers with its cosignature lines (about 150 bytes each), a size or a short reason.
MAX_ANSWER_BYTES = 64 * 1024


class WitnessUnavailable(Exception):
    """The witness could not be reached or failed (HTTP 5xx)."""


class WitnessConflict(WitnessRefused):
    """The witness last cosigned `size`, not the old size the request gave."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(409, message, size)


class WitnessClient:
    """Talks to one witness at `url` (http[s]://host[:port][/prefix])."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"witness URL {url!r} must look like https://witness.example.com[/prefix]")
        self.url = url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout

    def add_checkpoint(self, note: str, old_size: int, proof: Sequence[bytes]) -> str:
        """Submit the signed checkpoint `note` with a consistency proof from `old_size`; returns the
        witness's cosignature lines (unverified: check them with the witness's key)."""
        body = f"old {old_size}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof) + "\n" + note
        conn_type = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = conn_type(self._host, self._port, timeout=self._timeout)
        try:
            conn.request(
                "POST", f"{self._prefix}/add-checkpoint", body=body.encode(), headers={"Content-Type": "text/plain"}
            )
            resp = conn.getresponse()
            status, payload = resp.status, read_answer(resp, MAX_ANSWER_BYTES)
        except AnswerError as exc:
            raise WitnessUnavailable(f"the witness at {self.url} {exc}") from None
        except (OSError, http.client.HTTPException) as exc:  # unreachable, or a broken answer
            raise WitnessUnavailable(f"the witness at {self.url} is unreachable: {exc!r}") from None
        finally:
            conn.close()
        text = payload.decode("utf-8", "replace")
        if status == 200:
            return text
        if status == 409:
            size = text.strip()
            if not size.isdigit():
                raise WitnessUnavailable(f"the witness at {self.url} answered 409 without its size")
            return_size = int(size)
            raise WitnessConflict(f"the witness at {self.url} last cosigned size {return_size}", return_size)
        if status >= 500:
            raise WitnessUnavailable(f"the witness at {self.url} failed: HTTP {status}: {text.strip()[:300]}")
        raise WitnessRefused(status, f"the witness at {self.url} refused ({status}): {text.strip()[:300]}")
