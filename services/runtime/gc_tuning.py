"""The garbage collector, tuned once a service process has started.

CPython's cyclic collector runs every ~700 net allocations of container objects, and
each of its full collections walks every object the process holds: the imported
modules, pydantic's schemas, SQLAlchemy's compiled statements, the hub catalogue. None
of that ever becomes garbage, yet a booking decision paid ~95 µs for walking it
(`python -m bench.booking_decide`, docs/booking-throughput.md): a fifth of its CPU.

After start-up (:func:`settle`): one collection of what starting left behind, then
``gc.freeze()`` moves every surviving object to the permanent generation, which no
collection walks again, and the young generation is collected every
``gc_gen0_threshold`` net allocations instead of 700. Cyclic garbage is still
collected; reference counting frees everything else at once, as before. The cost: an
object alive at start-up that later dies in a reference cycle is never freed (start-up
objects live as long as the process), and up to ``gc_gen0_threshold`` young objects in
cycles wait a little longer to be freed.
"""

from __future__ import annotations

import gc

DEFAULT_GEN0_THRESHOLD = 700  # CPython's own (3.11)


def settle(gen0_threshold: int) -> None:
    """Freeze what start-up made and collect the young generation every
    ``gen0_threshold`` allocations (the older generations' thresholds unchanged)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
