"""Reading a peer's HTTP answer (the signer's, a witness's) with a bound on its size."""

from __future__ import annotations

import http.client


class AnswerError(Exception):
    """The answer is longer than allowed or ended before its announced length; the message reads
    after the peer's name ("answered more than ... bytes")."""


def read_answer(resp: http.client.HTTPResponse, limit: int) -> bytes:
    """At most `limit` bytes of `resp`'s body; AnswerError when it has more, or fewer than its
    Content-Length announced (the peer broke off). http.client errors propagate."""
    payload = resp.read(limit + 1)
    if len(payload) > limit:
        raise AnswerError(f"answered more than {limit} bytes")
    if resp.length:
        raise AnswerError("broke off its answer")
    return payload
