"""Read request bodies within a size limit (413 past it), optionally gzip-encoded."""

from __future__ import annotations

import zlib

from starlette.requests import Request

from siemgate.errors import BadRequest, PayloadTooLarge


async def read_body(request: Request, limit: int, *, allow_gzip: bool = False) -> bytes:
    """The whole body; raises PayloadTooLarge past `limit` bytes (decoded size for gzip)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit} bytes: send smaller batches")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over the limit of {limit} bytes: send smaller batches")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip") and allow_gzip:
        return _gunzip(body, limit)
    raise BadRequest(
        f"Content-Encoding {encoding!r} is not supported here; send identity" + (" or gzip" if allow_gzip else "")
    )


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decode one or more concatenated gzip members (as `gzip -d` does), at most `limit` bytes."""
    out = bytearray()
    rest = data
    while rest:
        if not rest.startswith(b"\x1f\x8b"):
            raise BadRequest("the body is not valid gzip (unexpected bytes after a gzip member)")
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += decoder.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise BadRequest(f"the body is not valid gzip: {exc}") from None
        if len(out) > limit or decoder.unconsumed_tail:
            raise PayloadTooLarge(f"the decompressed body is over the limit of {limit} bytes: send smaller batches")
        if not decoder.eof:
            raise BadRequest("the gzip body is truncated")
        rest = decoder.unused_data
    return bytes(out)
