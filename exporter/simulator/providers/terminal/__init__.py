"""Terminal: customers watch connections; each connection keeps a log of batch sync jobs and, in
automatic mode, starts a new job (with a new id) on a regular cadence.

    {sim}/terminal/tsp/v1  GET /connections?limit&cursor&status&tag&provider&externalId
                               Bearer <secret key>
                           GET /syncs?limit&cursor&status&expand   the connection's job log,
                               newest first (a connection made with `logOrder: oldest`
                               lists it oldest first); Bearer <secret key> and Connection-Token
                           GET /syncs/{id}?expand=issues           one job of that connection
    control  GET|POST /_sim/terminal/connections,
             GET|PATCH|DELETE /_sim/terminal/connections/{id}
             POST /_sim/syncs/terminal {"id", "body", "connection"?}: a job appended to a log
"""

from __future__ import annotations

from exporter.simulator.providers.terminal.fixtures import bulk_connection, demo_connections
from exporter.simulator.providers.terminal.model import (
    CONNECTION_STATUSES,
    DEFAULT_CONNECTION,
    DEFAULT_CONNECTION_TOKEN,
    DEFAULT_LIMIT,
    DISCONNECTED,
    FAILED_JOB,
    FAILING,
    HEALTHY,
    HISTORICAL,
    HISTORICAL_JOB,
    ISSUES_JOB,
    JOB,
    JOB_STATUSES,
    LOG_ORDERS,
    MANUAL,
    MAX_LIMIT,
    NAME,
    ONGOING_ISSUE,
    PROVIDER_NAMES,
    RECOVERED,
    RESOLVED_ISSUE,
    SECOND_ONGOING_ISSUE,
    SECRET,
    SYNC_MODES,
    WITH_ISSUES,
    AdHocJob,
    Cadence,
    Connection,
    ConnectionSpec,
    Issue,
    JobRef,
    JobState,
    Key,
    PastJob,
    render_job,
    token_of,
    ulid_like,
)
from exporter.simulator.providers.terminal.routes import (
    Terminal,
    decode_cursor,
    encode_cursor,
    paginate,
)
from exporter.simulator.providers.terminal.world import TerminalWorld

PROVIDER = Terminal()

__all__ = [
    "CONNECTION_STATUSES",
    "DEFAULT_CONNECTION",
    "DEFAULT_CONNECTION_TOKEN",
    "DEFAULT_LIMIT",
    "DISCONNECTED",
    "FAILED_JOB",
    "FAILING",
    "HEALTHY",
    "HISTORICAL",
    "HISTORICAL_JOB",
    "ISSUES_JOB",
    "JOB",
    "JOB_STATUSES",
    "LOG_ORDERS",
    "MANUAL",
    "MAX_LIMIT",
    "NAME",
    "ONGOING_ISSUE",
    "PROVIDER",
    "PROVIDER_NAMES",
    "RECOVERED",
    "RESOLVED_ISSUE",
    "SECOND_ONGOING_ISSUE",
    "SECRET",
    "SYNC_MODES",
    "WITH_ISSUES",
    "AdHocJob",
    "Cadence",
    "Connection",
    "ConnectionSpec",
    "Issue",
    "JobRef",
    "JobState",
    "Key",
    "PastJob",
    "Terminal",
    "TerminalWorld",
    "bulk_connection",
    "decode_cursor",
    "demo_connections",
    "encode_cursor",
    "paginate",
    "render_job",
    "token_of",
    "ulid_like",
]
