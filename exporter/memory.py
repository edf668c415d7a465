"""What keeps a long-running exporter's memory near what it holds: the collector's reach and
thresholds, and free memory handed back to the system after each collection."""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable

from exporter import gctrace

# Young passes every 10,000 allocations instead of 700: a scrape of 20,000 syncs then needs no
# full pass at all (four before, up to 86 ms each even with the targets frozen); the older
# generations keep the interpreter's ratios.
GC_THRESHOLDS = (10_000, 10, 10)


def freeze_long_lived() -> None:
    """Move every object alive now (the config, the sources, their targets) out of the
    collector's reach, so full passes during scrapes walk only what scrapes made.

    At 40,000 syncs the targets and config are about a million tracked objects, which each
    full pass walked again, holding the interpreter for 0.15-0.3 s mid-scrape. Frozen objects
    are still freed by reference counting, but garbage in reference cycles among them would
    never be: so a reload first unfreezes everything and collects once (one full pass, the
    price of the reload, not of a scrape), which frees the replaced config's cycles, then
    freezes what is left. Memory a reload frees thus comes back at the reload itself, not
    at some later pass. The collector's thresholds are set here too (GC_THRESHOLDS).
    """
    gc.set_threshold(*GC_THRESHOLDS)
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gctrace.frozen(gc.get_freeze_count())


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS).

    Looked up among the symbols the process already has (its C library), not by
    `ctypes.util.find_library`, which runs ldconfig in a subprocess on Linux.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the system; False where that cannot be done.

    A collection's response bodies and buffers are allocated between what it keeps (each
    sync's reading), so when they are freed the heap is left with holes that glibc keeps
    resident: about 1 KB per sync. malloc_trim releases every whole free page, not only the
    heap's top (30,000 syncs, RSS after four scrapes: 230 -> 198 MiB).
    """
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
