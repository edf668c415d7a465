"""Work too long for the event loop, run in a thread the loop waits for without blocking."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


async def in_thread(function: Callable[[], T], name: str = "worker", *, no_gc: bool = False) -> T:
    """Run `function` in a daemon thread and wait for it without blocking the event loop.

    Not the default executor: asyncio.run waits for its threads at exit, and a reload still
    parsing a huge file must not hold up a shutdown. `no_gc` pauses the garbage collector
    meanwhile, for work that makes millions of objects (see gc_paused).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            with gc_paused() if no_gc else contextlib.nullcontext():
                outcome: tuple[T | None, BaseException | None] = (function(), None)
        except BaseException as exc:
            outcome = (None, exc)
        # RuntimeError: the loop closed meanwhile, and nobody is waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future


_gc_lock = threading.Lock()
_gc_holders = 0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a config or a huge listing is built.

    Building 100,000 syncs makes millions of objects, and the collector would walk them all
    again and again: parsing took 5.2 s instead of 2.0 s, and each full pass held the
    interpreter for up to a second, stalling the event loop while a reload parsed in a thread.
    """
    global _gc_holders
    with _gc_lock:
        if _gc_holders == 0:
            was_enabled = gc.isenabled()
            gc.disable()
        else:
            was_enabled = False
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and (was_enabled or not gc.isenabled()):
                gc.enable()
