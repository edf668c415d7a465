"""A faithful local fake of the Paragon, Terminal and Sequin sync-status APIs.

It lets the demo show live metrics without an account, gives tests a real HTTP server whose
answers and faults they control, and serves the benchmark's bulk syncs.

Provider APIs (the exporter's `base_url` per provider is the prefix):
    {sim}/paragon           GET /api/syncs, /api/syncs/{id}       Bearer <paragon token>
    {sim}/terminal/tsp/v1   GET /syncs?limit&cursor&status&expand, /syncs/{id}?expand=issues
                            Bearer <secret> and Connection-Token
    {sim}/sequin            GET /v1/syncs, /v1/syncs/{id}         Bearer <sequin key>

Control API (JSON, no auth, not counted):
    GET  /_sim/syncs                          ids per provider
    POST /_sim/syncs/{provider}               {"id", "body"}: a sync answering exactly `body`
    GET|PUT|DELETE /_sim/syncs/{provider}/{id}  show / override fields / back to lifecycle
    GET|DELETE /_sim/faults                   list / clear all faults
    PUT|DELETE /_sim/faults/{provider}[/{id}] {status, retry_after, malformed, delay,
                                              wrong_shape, times}; no id = whole provider
    GET|DELETE /_sim/requests                 provider request counts / reset them
    GET|PUT /_sim/clock                       {"elapsed", "period"}: where the lifecycles are
    POST /_sim/reset                          drop overrides, ad-hoc syncs, faults, counts
    GET  /_sim/config                         exporter config for this server, as JSON
"""

from exporter.simulator.api import PREFIXES, error_body
from exporter.simulator.app import Simulator, create_app, run_simulator_in_thread
from exporter.simulator.catalog import bulk_id
from exporter.simulator.cli import main
from exporter.simulator.clock import Moment
from exporter.simulator.config import config_yaml, demo_config
from exporter.simulator.faults import Fault, parse_fault
from exporter.simulator.syncs import PROVIDERS, Provider
from exporter.simulator.world import DEFAULT_PERIOD, World, bulk_world, demo_world

__all__ = [
    "DEFAULT_PERIOD",
    "PREFIXES",
    "PROVIDERS",
    "Fault",
    "Moment",
    "Provider",
    "Simulator",
    "World",
    "bulk_id",
    "bulk_world",
    "config_yaml",
    "create_app",
    "demo_config",
    "demo_world",
    "error_body",
    "main",
    "parse_fault",
    "run_simulator_in_thread",
]
