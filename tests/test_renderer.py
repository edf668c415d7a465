"""Writing syncs in batches as they arrive gives the same exposition as writing them at once."""

from __future__ import annotations

import gzip

import pytest

from exporter.collect.snapshot import Snapshot
from exporter.exposition.deflate import Deflater, deflated
from exporter.exposition.render import Renderer, render_syncs
from tests.test_render import ADAPTERS, NOW, POLICY, results


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_batch_boundaries_do_not_change_the_output(
    batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = results()
    whole = render_syncs(pairs, NOW, POLICY, ADAPTERS)
    monkeypatch.setattr(Renderer, "BATCH", batch)
    assert render_syncs(pairs, NOW, POLICY, ADAPTERS) == whole


def test_snapshot_gzip_and_body_come_from_the_same_pieces() -> None:
    stream = Deflater()
    for _ in range(500):
        stream += b"x 1.0\n"
    pieces = [deflated(b"# a\n"), stream.finish(), deflated(b"# b\n")]
    snapshot = Snapshot(pieces=pieces, finished=0, duration=0)
    assert snapshot.body == b"# a\n" + b"x 1.0\n" * 500 + b"# b\n"
    assert gzip.decompress(snapshot.gzipped()) == snapshot.body
    assert snapshot.gzipped() is snapshot.gzipped()
    assert gzip.decompress(snapshot.openmetrics(gzipped=True)) == b"# EOF\n"
    assert snapshot.openmetrics(gzipped=False) == b"# EOF\n"
