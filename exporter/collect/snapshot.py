"""A finished collection's exposition, and the deadline a scrape gives one: what the web side
needs of a collection, apart from how it is made."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.config import CollectorConfig


@dataclass(slots=True)
class Snapshot:
    """A finished collection and its exposition, shared by every scrape that waited for it.

    The exposition is kept in per-family pieces: Prometheus asks for gzip, which is
    compressed from the pieces, so the whole uncompressed body is only joined for clients
    that want it (curl, --once).
    """

    chunks: list[bytes | bytearray]
    finished: float
    duration: float
    openmetrics_chunks: Callable[[], list[bytes | bytearray]] | None = field(
        default=None, repr=False
    )
    _body: bytes | None = field(default=None, repr=False)
    _gzipped: bytes | None = field(default=None, repr=False)
    _openmetrics: tuple[bytes, bytes] | None = field(default=None, repr=False)

    @property
    def body(self) -> bytes:
        """The uncompressed exposition, joined once for all scrapes that ask for it."""
        if self._body is None:
            self._body = b"".join(self.chunks)
        return self._body

    def gzipped(self) -> bytes:
        """The body gzip-compressed, computed once for all scrapes that ask for it."""
        if self._gzipped is None:
            compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
            self._gzipped = b"".join([*map(compressor.compress, self.chunks), compressor.flush()])
        return self._gzipped

    def openmetrics(self, gzipped: bool) -> bytes:
        """The same collection in OpenMetrics, written on first demand and kept for later
        scrapes (the per-sync samples are shared with the text format; the self-metrics are
        rendered when first asked for)."""
        if self._openmetrics is None:
            chunks = self.openmetrics_chunks() if self.openmetrics_chunks else [b"# EOF\n"]
            compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
            packed = b"".join([*map(compressor.compress, chunks), compressor.flush()])
            self._openmetrics = (b"".join(chunks), packed)
        return self._openmetrics[1 if gzipped else 0]


def scrape_timeout(header: str | None, settings: CollectorConfig) -> float:
    """The collection deadline: Prometheus's scrape timeout minus an offset, within bounds.

    Without the header (curl, --once) the configured default applies; a client asking for
    less than `min_timeout` gets `min_timeout`, so it cannot make every read a timeout.
    """
    try:
        offered = float(header) if header else None
    except ValueError:
        offered = None
    if offered is None or not offered > 0:
        return min(settings.default_timeout, settings.max_timeout)
    if offered > settings.timeout_offset:
        offered -= settings.timeout_offset
    return min(max(offered, settings.min_timeout), settings.max_timeout)
