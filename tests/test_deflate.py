"""Gzip joined from pieces compressed apart is one valid member holding the pieces in order
(exporter/exposition/deflate.py), as every gzip reader sees it: Python's, zlib's, and gzip(1)."""

from __future__ import annotations

import gzip
import subprocess
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.exposition.deflate import (
    EMPTY,
    Deflater,
    crc32_combine,
    deflated,
    gunzip,
    gzip_join,
)
from tests.tools import require


@given(st.binary(max_size=4096), st.binary(max_size=4096))
def test_combined_crc_is_the_crc_of_both_strings(first: bytes, second: bytes) -> None:
    combined = crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second))
    assert combined == zlib.crc32(first + second)


def test_combined_crc_holds_for_megabytes_built_by_doubling() -> None:
    # 8 MiB of zeros after a head, its CRC grown by zlib a MiB at a time, against the
    # combination of CRCs doubled from one MiB: each doubling exercises larger powers of x.
    block = bytes(1 << 20)
    expected = zlib.crc32(b"head")
    for _ in range(8):
        expected = zlib.crc32(block, expected)
    zeros, size = zlib.crc32(block), len(block)
    while size < 8 << 20:
        zeros, size = crc32_combine(zeros, zeros, size), size * 2
    assert crc32_combine(zlib.crc32(b"head"), zeros, size) == expected


@given(st.lists(st.lists(st.binary(max_size=700), max_size=6), max_size=6))
def test_pieces_written_in_parts_join_into_one_member(streams: list[list[bytes]]) -> None:
    pieces = []
    for parts in streams:
        stream = Deflater()
        for part in parts:
            stream += part
        pieces.append(stream.finish())
    whole = b"".join(b"".join(parts) for parts in streams)
    joined = gzip_join(pieces)
    assert gzip.decompress(joined) == whole
    assert gunzip(joined) == whole
    # One member: zlib's own reader stops at a member's end and leaves nothing over.
    reader = zlib.decompressobj(31)
    assert reader.decompress(joined) == whole
    assert reader.eof and reader.unused_data == b""


def test_a_stream_with_nothing_written_costs_nothing_and_joins_to_an_empty_body() -> None:
    assert Deflater().finish() is EMPTY
    assert gzip.decompress(gzip_join([EMPTY, EMPTY])) == b""
    assert gzip.decompress(gzip_join([])) == b""


def test_a_finished_stream_gives_the_same_piece_and_refuses_more() -> None:
    stream = Deflater()
    stream += b"sync_up 1.0\n"
    piece = stream.finish()
    assert stream.finish() is piece
    with pytest.raises(ValueError, match="finished"):
        stream += b"more"


def test_joined_gzip_compresses_as_well_as_one_stream() -> None:
    # The exposition's repeated label sets: joining per-family pieces keeps the ratio.
    lines = b"".join(
        f'sync_up{{provider="paragon",source="p",sync_id="{n:08d}"}} 1.0\n'.encode()
        for n in range(20_000)
    )
    joined = gzip_join([deflated(lines[:400_000]), deflated(lines[400_000:])])
    whole = gzip.compress(lines, compresslevel=1)
    assert len(joined) < 1.05 * len(whole)


def test_gzip_tool_checks_the_joined_member() -> None:
    gzip_tool = require("gzip")
    joined = gzip_join([deflated(b"a" * 10_000), deflated(b"b\n" * 300), deflated(b"")])
    checked = subprocess.run([gzip_tool, "-t"], input=joined, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr
    out = subprocess.run([gzip_tool, "-dc"], input=joined, capture_output=True, check=True)
    assert out.stdout == b"a" * 10_000 + b"b\n" * 300
