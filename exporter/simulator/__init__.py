"""A faithful local fake of the Paragon, Terminal and Sequin sync-status APIs, and of the
services the generic provider's presets read (Fivetran, Nango, Merge, Airbyte) beside a
made-up pipelines API of its own.

It lets the demo show live metrics without an account, gives tests a real HTTP server whose
answers and faults they control, and serves the benchmark's bulk syncs. Each provider is one
module of `exporter.simulator.providers` (its syncs, routes, auth, errors, catalogues and
exporter config); the rest is shared.

Provider APIs (the exporter's `base_url` per provider is the prefix):
    {sim}/paragon           GET /api/syncs[?credentialId], /api/syncs/{id}
                            Bearer <Paragon User Token: RS256 JWT, sub = user, aud>
    {sim}/terminal/tsp/v1   GET /connections?limit&cursor&status&tag&provider&externalId
                            Bearer <secret key>
                            GET /syncs?limit&cursor&status&expand, /syncs/{id}?expand=issues
                            Bearer <secret key> and Connection-Token
    {sim}/sequin            GET /v1/syncs, /v1/syncs/{id}         Bearer <sequin key>
    {sim}/generic           GET /v2/pipelines[?cursor&page_size], /v2/pipelines/{id}
                            X-Api-Key <key>   (made up: see providers/generic.py)
    {sim}/fivetran          GET /v1/connections[?cursor&limit], /v1/connections/{id}
                            Basic <key:secret>, Accept: application/json;version=2
    {sim}/nango             GET /sync/status?provider_config_key&syncs[&connection_id]
                            Bearer <secret key>
    {sim}/merge             GET /api/{category}/v1/sync-status   Bearer <API key>,
                            X-Account-Token <linked account's token>
    {sim}/airbyte/v1        POST /applications/token  {client_id, client_secret, grant-type}
                            GET /connections[?limit&offset],
                            /jobs?connectionId&orderBy&limit[&status&jobType]
                            Bearer <minted or static token> or Basic <user:password>

Control API (JSON, no auth, not counted):
    GET  /_sim/syncs                          ids per provider (Terminal: job ids)
    POST /_sim/syncs/{provider}               {"id", "body"} (+ Paragon "user", Terminal
                                              "connection", generic "summary", Nango
                                              "integration", Merge "token" and "category",
                                              Airbyte "name" and "status"): a sync
                                              answering exactly `body`
    GET|PUT|DELETE /_sim/syncs/{provider}/{id}  show / override fields / back to lifecycle
    DELETE /_sim/syncs/{provider}/{id}?remove=true  remove a sync made by POST (Terminal: a job)
    GET|DELETE /_sim/faults                   list / clear all faults
    PUT|DELETE /_sim/faults/{provider}[/{id}] {status, retry_after, retry_after_header,
                                              malformed, delay, wrong_shape, times}; no id =
                                              whole provider; id = a sync, a Paragon user or
                                              a Terminal connection
    GET|DELETE /_sim/requests                 request counts (per provider, path, second) / reset
    GET|PUT /_sim/clock                       {"elapsed", "period"}: where the lifecycles are
    POST /_sim/reset                          drop overrides, ad-hoc syncs, faults, counts
    GET  /_sim/config[?discover=false]        exporter config for this server, as JSON
    GET  /_sim/paragon                        project id, audience, signing key, users
    GET  /_sim/paragon/token?user&ttl&aud     a minted Paragon User Token
    GET|PUT /_sim/airbyte/application         client id and secret, token lifetime
                                              {"expires_in"}, {"expire": true}
    GET|POST /_sim/terminal/connections       connections (tokens, job ids) / make one
                                              (`logOrder: oldest` lists its log oldest first)
    GET|PATCH|DELETE /_sim/terminal/connections/{id}  one connection / change status or
                                              syncMode / delete it
"""

from exporter.simulator.app import Simulator, create_app, run_simulator_in_thread
from exporter.simulator.cli import main
from exporter.simulator.clock import Moment
from exporter.simulator.config import config_yaml, demo_config
from exporter.simulator.faults import Fault, parse_fault
from exporter.simulator.providers import PROVIDERS
from exporter.simulator.providers.base import JSON, ProviderState, SimProvider, bulk_id
from exporter.simulator.webhooks import Sender
from exporter.simulator.world import DEFAULT_PERIOD, World, bulk_world, demo_world

PREFIXES: dict[str, str] = {name: provider.prefix for name, provider in PROVIDERS.items()}


def error_body(provider: str, status: int, detail: str, retry_after: str | None = None) -> JSON:
    """The error JSON `provider` answers with for `status`."""
    return PROVIDERS[provider].error_body(status, detail, retry_after)


__all__ = [
    "DEFAULT_PERIOD",
    "PREFIXES",
    "PROVIDERS",
    "Fault",
    "Moment",
    "ProviderState",
    "Sender",
    "SimProvider",
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
