"""A finished collection's exposition, and the deadline a scrape gives one: what the web side
needs of a collection, apart from how it is made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.config import CollectorConfig
from exporter.exposition.deflate import Deflated, deflated, gunzip, gzip_join

OPENMETRICS_EOF = deflated(b"# EOF\n")


@dataclass(slots=True)
class Snapshot:
    """A finished collection and its exposition, shared by every scrape that waited for it.

    The exposition is kept only compressed, in per-family pieces (exporter/exposition/
    deflate.py): Prometheus asks for gzip, which is joined from them once, and the rare
    client without gzip (curl, --once) gets it decompressed on each request.
    """

    pieces: list[Deflated]
    finished: float
    duration: float
    openmetrics_pieces: Callable[[], list[Deflated]] | None = field(default=None, repr=False)
    _gzipped: bytes | None = field(default=None, repr=False)
    _openmetrics: bytes | None = field(default=None, repr=False)

    @property
    def body(self) -> bytes:
        """The uncompressed exposition."""
        return gunzip(self.gzipped())

    def gzipped(self) -> bytes:
        """The body gzip-compressed, joined once for all scrapes that ask for it."""
        if self._gzipped is None:
            self._gzipped = gzip_join(self.pieces)
        return self._gzipped

    def openmetrics(self, gzipped: bool) -> bytes:
        """The same collection in OpenMetrics, joined on first demand and kept for later
        scrapes (the per-sync samples are shared with the text format; the self-metrics are
        rendered when first asked for)."""
        if self._openmetrics is None:
            pieces = self.openmetrics_pieces() if self.openmetrics_pieces else [OPENMETRICS_EOF]
            self._openmetrics = gzip_join(pieces)
        return self._openmetrics if gzipped else gunzip(self._openmetrics)


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
