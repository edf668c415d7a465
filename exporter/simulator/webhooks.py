"""Sending the providers' webhooks: when a simulated sync's run ends, POST what the provider
would, signed as it signs, to the URL configured for that provider.

The world is pure and time-driven, so the sender looks at it every `tick` seconds and sends
the events each provider derives from a sync's body changing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping

import aiohttp

from exporter.simulator.providers import PROVIDERS
from exporter.simulator.providers.base import JSON
from exporter.simulator.world import World

log = logging.getLogger("simulator.webhooks")

DEFAULT_TICK = 1.0


class Sender:
    """Delivers each provider's webhooks to its URL, once per change seen."""

    def __init__(self, world: World, urls: Mapping[str, str], tick: float = DEFAULT_TICK) -> None:
        unknown = sorted(set(urls) - {n for n, p in PROVIDERS.items() if p.webhook_secret})
        if unknown:
            raise ValueError(f"no webhooks for: {', '.join(unknown)}")
        self.world = world
        self.urls = dict(urls)
        self.tick = tick
        self.sent = 0
        self.failed = 0
        self._seen: dict[tuple[str, str], JSON] = {}
        self._task: asyncio.Task[None] | None = None

    def events(self, now: float) -> list[tuple[str, JSON]]:
        """What the providers send for the changes since the last look, as (provider, event)."""
        found: list[tuple[str, JSON]] = []
        for name in self.urls:
            provider = PROVIDERS[name]
            subjects = [(i, self.world.body(name, i, now)) for i in self.world.ids(name, now)]
            for sync_id, body in subjects + provider.webhook_subjects(self.world, now):
                if body is None:
                    continue
                before = self._seen.get((name, sync_id))
                self._seen[(name, sync_id)] = body
                sent = provider.webhook_events_in(self.world, sync_id, before, body, now)
                found += [(name, event) for event in sent]
        return found

    async def _deliver(self, session: aiohttp.ClientSession, name: str, event: JSON) -> None:
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", **PROVIDERS[name].webhook_headers(body)}
        try:
            async with session.post(self.urls[name], data=body, headers=headers) as answer:
                ok = 200 <= answer.status < 300
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            self.sent += 1
        else:
            self.failed += 1

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                for name, event in self.events(time.time()):
                    await self._deliver(session, name, event)
                await asyncio.sleep(self.tick)

    def start(self) -> None:
        """Look and send in the background until `stop`."""
        self.events(time.time())  # the state at start is no change
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop sending."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def hook_all(config: Mapping[str, object], world: World) -> Callable[[str], dict[str, str]]:
    """Give the `world`'s sources in an exporter `config` (as `source()` writes them) their
    webhook secrets; the result maps the exporter's URL to where each provider sends:
    `<url>/webhooks/<source>`, with the secret as `?token=` for providers that sign nothing."""
    hooked: dict[str, str] = {}
    sources = config.get("sources")
    for source in sources if isinstance(sources, list) else []:
        for name, provider in PROVIDERS.items():
            secret = provider.webhook_secret
            if secret is None or source.get("name") != f"{world.name}-{name}":
                continue
            source.setdefault("webhook", {"secret": secret})
            signed = bool(provider.webhook_headers(b"{}"))
            hooked[name] = f"/webhooks/{source['name']}" + ("" if signed else f"?token={secret}")

    def urls(url: str) -> dict[str, str]:
        return {name: url + path for name, path in hooked.items()}

    return urls
