"""Request bodies within limits: received on the event loop (only appending chunks), decoded
elsewhere. Every limit is checked before the work it bounds: the declared and received size
before the body is kept, gzip members and decoded size while decoding (docs/security.md)."""

from __future__ import annotations

import zlib

from starlette.requests import ClientDisconnect, Request

from siemgate.errors import BadRequest, ClientGone, PayloadTooLarge
from siemgate.model.text import excerpt

GZIP_MAGIC = b"\x1f\x8b"
_FIRST_STEP = 256  # input given to a gzip member's decoder at first; doubled while it needs more
_LARGEST_STEP = 1024 * 1024


async def receive_body(request: Request, limit: int) -> bytes:
    """The raw body; raises PayloadTooLarge past `limit` bytes, from Content-Length when it is
    declared, else as soon as the chunks received pass it; ClientGone when the client hangs up."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit} bytes: send smaller batches")
    chunks = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is over the limit of {limit} bytes: send smaller batches")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone("the client closed the connection before sending the whole body") from None
    return b"".join(chunks)


def is_gzip(request: Request, *, allow_gzip: bool) -> bool:
    """Whether the body is gzip-encoded; raises BadRequest for an encoding not accepted here."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return False
    if encoding in ("gzip", "x-gzip") and allow_gzip:
        return True
    raise BadRequest(
        f"Content-Encoding {excerpt(encoding)} is not supported here; send identity"
        + (" or gzip" if allow_gzip else "")
    )


async def read_body(request: Request, limit: int) -> bytes:
    """A small identity-encoded body (the Events API's): receive_body after checking the encoding."""
    is_gzip(request, allow_gzip=False)
    return await receive_body(request, limit)


def gunzip(data: bytes, *, max_bytes: int, max_members: int) -> bytes:
    """Decode one or more concatenated gzip members (as `gzip -d` does); blocking, linear in the
    input and output. Raises PayloadTooLarge past `max_bytes` decoded bytes or `max_members`
    members (each checked as decoding goes, before more is decoded), BadRequest for bad gzip.

    Each member's decoder gets its input in pieces that double in size, and the next member starts
    at the offset where the previous one ended: what a decoder copies out past the end of its
    member is at most twice the member, so many small members cost no more than one large one."""
    out = bytearray()
    view = memoryview(data)
    pos, members = 0, 0
    while pos < len(data):
        if data[pos : pos + 2] != GZIP_MAGIC:
            raise BadRequest("the body is not valid gzip (unexpected bytes after a gzip member)")
        members += 1
        if members > max_members:
            raise PayloadTooLarge(
                f"the gzip body has more than {max_members} members (concatenated gzip streams): send fewer"
            )
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        step = _FIRST_STEP
        while not decoder.eof:
            if pos >= len(data):
                raise BadRequest("the gzip body is truncated")
            piece = view[pos : pos + step]
            pos += len(piece)
            step = min(step * 2, _LARGEST_STEP)
            try:
                out += decoder.decompress(piece, max_bytes + 1 - len(out))
            except zlib.error as exc:
                raise BadRequest(f"the body is not valid gzip: {exc}") from None
            if len(out) > max_bytes:
                raise PayloadTooLarge(
                    f"the decompressed body is over the limit of {max_bytes} bytes: send smaller batches"
                )
        pos -= len(decoder.unused_data)
    return bytes(out)
