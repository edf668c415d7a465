"""`generic.last_success_from`: a second request for the last success, when the sync's own
document holds none, made again only when the document's latest run changes.

A job log read newest-first shows the last success only while the newest job is that success:
as soon as the next run starts (or fails), Airbyte's latest job has no success time and the
sync would look as if it had never succeeded, and staleness with it. Asking the log for its
last *succeeded* job gives it back; remembering the answer until a new job appears keeps it
to one extra request per job rather than one per scrape, as Terminal's adapter does.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from jmespath.exceptions import JMESPathError
from pydantic import AfterValidator

from exporter import values
from exporter.model import SyncStatus
from exporter.providers.base import Http, path_id
from exporter.schema import Model, compile_path, shown

MEMORY = "last_success_from"
_PATH = re.compile(r"/(?!/)[\x21-\x22\x24-\x7e]*")


def _path(text: str) -> str:
    """A path on base_url with the sync id in it: credentials only go to the configured host."""
    bare = text.replace("{id}", "x")
    if "{id}" not in text or not _PATH.fullmatch(bare) or "://" in bare or {"{", "}"} & set(bare):
        raise ValueError(
            f"must be a path on base_url starting with '/' and holding {{id}} (its only "
            f"placeholder), without scheme, host, spaces or '#', got {shown(text)}"
        )
    return text


def _expression(text: str) -> str:
    compile_path(text)
    return text


class LastSuccessFrom(Model):
    """Where the last success is when the sync's document has none: one GET and a path."""

    path: Annotated[str, AfterValidator(_path)]
    time: Annotated[str, AfterValidator(_expression)]
    format: Literal["iso", "epoch", "epoch_ms"] = "iso"
    again_when: Annotated[str, AfterValidator(_expression)] | None = None


def _search(expression: Any, document: Any) -> Any:
    try:
        return expression.search(document)
    except (JMESPathError, TypeError, ValueError, ArithmeticError, RecursionError):
        return None


def _key(value: Any) -> str | None:
    """What the latest run is known by (a job id), as text; None when the path finds none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        return str(value)
    return None


def _moment(value: Any, format: str) -> float | None:
    if format == "iso":
        return values.timestamp(value)
    number = values.number(value) if not isinstance(value, bool) else None
    if number is None:
        return None
    return number / 1000.0 if format == "epoch_ms" else number


class LastSuccessReader:
    """A compiled `last_success_from`, filling a status's last success from its own request."""

    __slots__ = ("_again", "_base", "_format", "_path", "_time")

    def __init__(self, spec: LastSuccessFrom, base_url: str) -> None:
        self._base = base_url
        self._path = spec.path
        self._time = compile_path(spec.time)
        self._format = spec.format
        self._again = None if spec.again_when is None else compile_path(spec.again_when)

    async def fill(
        self,
        status: SyncStatus,
        document: Any,
        sync_id: str,
        memory: dict[str, Any],
        http: Http,
        headers: dict[str, str],
    ) -> None:
        """Set `status`'s last success from the document, else from the remembered or a fresh
        answer of the request (fresh when the run `again_when` names has changed)."""
        key = None if self._again is None else _key(_search(self._again, document))
        if status.last_synced_timestamp is not None:
            memory[MEMORY] = (key, status.last_synced_timestamp)
            return
        known = memory.get(MEMORY)
        if self._again is not None and known is not None and known[0] == key:
            status.last_synced_timestamp = known[1]
            return
        url = self._base + self._path.replace("{id}", path_id(sync_id))
        body = await http.get(url, headers)
        found = _moment(_search(self._time, body), self._format)
        if found is None and known is not None:
            found = known[1]  # an answer without one does not undo a success seen before
        memory[MEMORY] = (key, found)
        status.last_synced_timestamp = found
