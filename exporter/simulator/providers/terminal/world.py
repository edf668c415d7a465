"""Terminal's part of a simulated world: the secret key and the connections."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from exporter.simulator.clock import Moment, parse_iso
from exporter.simulator.host import WorldView
from exporter.simulator.providers.base import (
    JSON,
    ControlError,
    ProviderState,
    state_of,
)
from exporter.simulator.providers.terminal.model import (
    DEFAULT_CONNECTION,
    DEFAULT_CONNECTION_TOKEN,
    NAME,
    SECRET,
    AdHocJob,
    Connection,
    ConnectionSpec,
    JobRef,
    Key,
)


class TerminalWorld(ProviderState):
    """Terminal's part of a world: the application's secret key and its connections."""

    def __init__(self, specs: Iterable[ConnectionSpec], secret: str = SECRET) -> None:
        super().__init__()
        self.secret = secret
        self._specs = list(specs)
        ids = [spec.id for spec in self._specs]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate terminal connection ids")
        self._forget()

    def _forget(self) -> None:
        self.connections: dict[str, Connection] = {}
        self._by_token: dict[str, Connection] = {}
        for spec in self._specs:
            self._add(Connection(spec))

    def _add(self, connection: Connection) -> Connection:
        if connection.id in self.connections:
            raise ControlError(409, f"connection {connection.id!r} exists")
        if connection.token in self._by_token:
            raise ControlError(409, "another connection has that token")
        self.connections[connection.id] = connection
        self._by_token[connection.token] = connection
        return connection

    def add_connection(self, spec: ConnectionSpec, m: Moment) -> Connection:
        """A connection made at `m` (its cadence, if any, starts with the next cycle);
        ControlError 409 if its id or token is taken."""
        return self._add(Connection(spec, m.now, m))

    def by_token(self, token: str | None) -> Connection | None:
        """The connection a Connection-Token selects."""
        return None if token is None else self._by_token.get(token)

    def default_connection(self, m: Moment) -> Connection:
        """The connection of jobs appended without one (token `con_tkn_simulator`), made the
        first time a test needs it."""
        known = self._by_token.get(DEFAULT_CONNECTION_TOKEN)
        if known is not None:
            return known
        spec = ConnectionSpec(
            DEFAULT_CONNECTION,
            "Simulator default connection",
            "geotab",
            token=DEFAULT_CONNECTION_TOKEN,
            sync_mode="manual",
        )
        return self.add_connection(spec, m)

    def listing(self, m: Moment) -> list[tuple[Key, Connection]]:
        """Connections oldest first, keyed for pagination."""
        keyed = [((c.created(m), c.id), c) for c in self.connections.values()]
        keyed.sort(key=lambda pair: pair[0])
        return keyed

    def find(self, job_id: str, m: Moment) -> tuple[Connection, JobRef] | None:
        """The connection holding job `job_id`, and the job."""
        for connection in self.connections.values():
            ref = connection.find(job_id, m)
            if ref is not None:
                return connection, ref
        return None

    def ids(self, m: Moment) -> list[str]:
        """Job ids of every connection, each log newest first."""
        return [ref.id for c in self.connections.values() for ref in c.log(m)]

    def has(self, sync_id: str, m: Moment) -> bool:
        """Whether some connection has the job."""
        return self.find(sync_id, m) is not None

    def has_target(self, target: str, m: Moment) -> bool:
        """Faults aim at a job or at a connection (all requests with its token)."""
        return target in self.connections or self.has(target, m)

    def render(self, sync_id: str, m: Moment, *, expand: bool = False) -> JSON | None:
        """The job's body at `m`, before overrides."""
        found = self.find(sync_id, m)
        if found is None:
            return None
        connection, ref = found
        return connection.render_job(ref, m, expand=expand)

    def add_static(self, sync_id: str, body: JSON, m: Moment, extra: Mapping[str, Any]) -> bool:
        """A job appended to the log of `extra["connection"]` (an id), or of the default
        connection; it replaces an earlier appended job of the same id."""
        unknown = sorted(set(extra) - {"connection"})
        if unknown:
            raise ControlError(400, f"unknown fields: {', '.join(unknown)}")
        target = extra.get("connection")
        if target is None:
            connection = self.default_connection(m)
        elif not isinstance(target, str) or target not in self.connections:
            raise ControlError(404, f"no terminal connection {target!r}")
        else:
            connection = self.connections[target]
        created = True
        for other in self.connections.values():
            kept = [job for job in other.added if job.id != sync_id]
            if len(kept) != len(other.added):
                other.added, created = kept, False
        if created and self.has(sync_id, m):
            raise ControlError(409, f"{sync_id!r} is a catalogue job; pick another id")
        stamp = body.get("requestedAt")
        requested = parse_iso(stamp) if isinstance(stamp, str) else None
        job = AdHocJob(sync_id, dict(body), m.now if requested is None else requested)
        connection.added.append(job)
        self.drop_override(sync_id)
        return created

    def remove_static(self, sync_id: str, m: Moment) -> bool:
        """Take an appended job out of its connection's log."""
        for connection in self.connections.values():
            kept = [job for job in connection.added if job.id != sync_id]
            if len(kept) != len(connection.added):
                connection.added = kept
                self.drop_override(sync_id)
                return True
        return False

    def remove_connection(self, connection_id: str) -> bool:
        """Delete a connection and its jobs, as deleting it in Terminal's dashboard would;
        False if there is no such connection."""
        connection = self.connections.pop(connection_id, None)
        if connection is None:
            return False
        self._by_token.pop(connection.token, None)
        return True


def terminal_state(world: WorldView) -> TerminalWorld:
    """Terminal's part of `world`, typed, for the routes."""
    return state_of(world, NAME, TerminalWorld)
