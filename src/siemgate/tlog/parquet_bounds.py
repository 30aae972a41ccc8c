"""Reading a Parquet archive file that may be hostile, in bounded memory (docs/retention.md,
"Reading archives"): the shared reader of the server (retention.parquet) and of the standalone
`siemgate-verify archive`. Standard library; `pyarrow` imported when a file is read.

Before pyarrow allocates anything a file declares, `batches` checks, raising ParquetBoundError
(a ValueError saying what is wrong):
- the file starts and ends with `PAR1` and its footer (the file's metadata) is at most
  MAX_FOOTER_BYTES;
- the schema has at most MAX_COLUMNS columns and the key-value metadata at most
  MAX_KEY_VALUE_BYTES;
- every page header of the columns read (walked in the file, not taken from the footer's sums,
  which a file can state falsely) is at most MAX_PAGE_HEADER_BYTES, lies inside its column chunk
  and declares at most MAX_PAGE_BYTES decompressed (pyarrow refuses a page that decompresses to
  more than its header says).
A row group is then read in batches of as many rows as fit BATCH_BYTES when every value is as
large as the largest page it declares (at most BATCH_ROWS), so a batch never holds more than about
BATCH_BYTES per column however the values are laid out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

MAGIC = b"PAR1"
MAX_FOOTER_BYTES = 16 * 1024 * 1024
MAX_COLUMNS = 1024
MAX_KEY_VALUE_BYTES = 1024 * 1024
# A page holds at least one value: above the longest event any setting stores in practice (the
# JSON Lines bound, MAX_LINE_BYTES, is 64 MiB).
MAX_PAGE_BYTES = 128 * 1024 * 1024
MAX_PAGE_HEADER_BYTES = 1024 * 1024
BATCH_ROWS = 1024
BATCH_BYTES = 64 * 1024 * 1024


class ParquetBoundError(ValueError):
    """The Parquet file is not one, or declares more than this reader takes."""


def batches(path: Path, columns: list[str]) -> Iterator[Any]:
    """The `columns` of the Parquet file `path` (those it has), as pyarrow RecordBatches, after the
    checks of the module docstring; raises ParquetBoundError (or pyarrow's errors for a file
    that passes them and is still damaged)."""
    import pyarrow.parquet as pq  # only for Parquet archives

    _check_footer(path)
    with pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False) as f:
        meta = f.metadata
        if meta.num_columns > MAX_COLUMNS:
            raise ParquetBoundError(f"{meta.num_columns} columns, more than the {MAX_COLUMNS} this reader takes")
        kv = meta.metadata or {}
        if sum(len(k) + len(v) for k, v in kv.items()) > MAX_KEY_VALUE_BYTES:
            raise ParquetBoundError(f"key-value metadata larger than {MAX_KEY_VALUE_BYTES} bytes")
        chosen = [c for c in columns if c in f.schema_arrow.names]
        with open(path, "rb") as raw:
            for group in range(meta.num_row_groups):
                row_group = meta.row_group(group)
                # every column's pages, not only those read: simpler than mapping names to leaves
                largest = max([1] + [_largest_page(raw, row_group.column(c), group) for c in range(meta.num_columns)])
                rows = max(1, min(BATCH_ROWS, BATCH_BYTES // largest))
                yield from f.iter_batches(rows, row_groups=[group], columns=chosen, use_threads=False)


def _check_footer(path: Path) -> None:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 12:
            raise ParquetBoundError(f"{size} bytes: not a Parquet file")
        head = f.read(4)
        f.seek(size - 8)
        tail = f.read(8)
    if head != MAGIC or tail[4:] != MAGIC:
        raise ParquetBoundError("not a Parquet file (no PAR1 at its start and end)")
    footer = int.from_bytes(tail[:4], "little")
    if footer > MAX_FOOTER_BYTES or footer > size - 12:
        raise ParquetBoundError(
            f"its footer says it is {footer} bytes (the file has {size}); this reader takes at most {MAX_FOOTER_BYTES}"
        )


def _largest_page(raw: BinaryIO, chunk: Any, group: int) -> int:
    """Walk the page headers of a column chunk; the largest decompressed page size it declares."""
    start = chunk.data_page_offset
    if chunk.has_dictionary_page and chunk.dictionary_page_offset and chunk.dictionary_page_offset < start:
        start = chunk.dictionary_page_offset
    end = start + chunk.total_compressed_size
    where = f"row group {group} column {chunk.path_in_schema}"
    largest, pos = 0, start
    while pos < end:
        raw.seek(pos)
        reader = _Reader(raw, where)
        uncompressed, compressed = _page_sizes(reader)
        if uncompressed > MAX_PAGE_BYTES:
            raise ParquetBoundError(
                f"{where}: a page declares {uncompressed} bytes decompressed, more than the {MAX_PAGE_BYTES} this"
                " reader takes"
            )
        if compressed < 0 or uncompressed < 0 or pos + reader.used + compressed > end:
            raise ParquetBoundError(f"{where}: a page runs past its column chunk")
        largest = max(largest, uncompressed)
        pos += reader.used + compressed
    return largest


class _Reader:
    """Bytes of a page header, read on demand, at most MAX_PAGE_HEADER_BYTES."""

    def __init__(self, raw: BinaryIO, where: str) -> None:
        self.raw, self.where, self.used, self.buf, self.at = raw, where, 0, b"", 0

    def take(self, n: int) -> bytes:
        if self.used + n > MAX_PAGE_HEADER_BYTES:
            raise ParquetBoundError(f"{self.where}: a page header longer than {MAX_PAGE_HEADER_BYTES} bytes")
        while len(self.buf) - self.at < n:
            more = self.raw.read(max(4096, n))
            if not more:
                raise ParquetBoundError(f"{self.where}: the file ends inside a page header")
            self.buf = self.buf[self.at :] + more
            self.at = 0
        out = self.buf[self.at : self.at + n]
        self.at += n
        self.used += n
        return out

    def varint(self) -> int:
        out, shift = 0, 0
        while True:
            byte = self.take(1)[0]
            out |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return out
            shift += 7
            if shift > 63:
                raise ParquetBoundError(f"{self.where}: a page header is not valid (a varint too long)")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)


def _page_sizes(reader: _Reader) -> tuple[int, int]:
    """(uncompressed, compressed) page size of a Thrift compact-protocol PageHeader (fields 2, 3);
    the rest of the header is skipped."""
    sizes: dict[int, int] = {}
    field = 0
    while True:
        head = reader.take(1)[0]
        if head == 0:
            break
        kind, delta = head & 0x0F, head >> 4
        field = field + delta if delta else reader.zigzag()
        if field in (2, 3) and kind == 5:
            sizes[field] = reader.zigzag()
        else:
            _skip(reader, kind, 0)
    if 2 not in sizes or 3 not in sizes:
        raise ParquetBoundError(f"{reader.where}: a page header without its sizes")
    return sizes[2], sizes[3]


def _skip(reader: _Reader, kind: int, depth: int, element: bool = False) -> None:
    """Skip one value of Thrift compact type `kind` (`element`: of a list, set or map)."""
    if depth > 32:
        raise ParquetBoundError(f"{reader.where}: a page header nested too deep")
    if kind in (1, 2):  # a boolean field is in its type; an element takes a byte
        if element:
            reader.take(1)
        return
    if kind == 3:
        reader.take(1)
    elif kind in (4, 5, 6):
        reader.varint()
    elif kind == 7:
        reader.take(8)
    elif kind == 8:
        reader.take(reader.varint())
    elif kind in (9, 10):
        head = reader.take(1)[0]
        count, of = head >> 4, head & 0x0F
        if count == 15:
            count = reader.varint()
        for _ in range(count):
            _skip(reader, of, depth + 1, element=True)
    elif kind == 11:
        count = reader.varint()
        if count:
            types = reader.take(1)[0]
            for _ in range(count):
                _skip(reader, types >> 4, depth + 1, element=True)
                _skip(reader, types & 0x0F, depth + 1, element=True)
    elif kind == 12:
        while True:
            head = reader.take(1)[0]
            if head == 0:
                return
            if not head >> 4:
                reader.zigzag()
            _skip(reader, head & 0x0F, depth + 1)
    else:
        raise ParquetBoundError(f"{reader.where}: a page header is not valid (Thrift type {kind})")
