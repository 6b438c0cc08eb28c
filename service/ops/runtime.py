"""Process tuning for an allocation-heavy ingest service."""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 100_000


def tune_garbage_collector() -> None:
    """Parsing a batch allocates ~3 small objects per sample, none of them cyclic; with the default
    gen-0 threshold (2,000) the cyclic collector runs hundreds of times per batch and took ~80% of JSON
    parsing time (bench/ingest.py). Freeze start-up objects and collect young objects less often."""
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
