"""Does a replay sweep on Ray scale with the cores it is given?

Runs one grid (the NAB series of `service/sample_data/nab/` x policies x seeds) three times: serially
in this process (the reference), on a local Ray with 1 CPU, and on a local Ray with `--cpus` CPUs, and
prints cells per second and the speed-up of each against the 1-CPU Ray run. On an idle 2-core machine the
ideal is 2.0x; the serial run shows what Ray itself costs.

    OMP_NUM_THREADS=1 .venv/bin/python bench/replay_sweep_scaling.py [--cpus 2] [--max-steps 20000]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table

from replay.engine import run_replay
from replay.sweep import grid, sweep

NAB = Path(__file__).resolve().parents[1] / "service" / "sample_data" / "nab"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=20000, help="steps per cell (60 s steps)")
    parser.add_argument("--policies", default="hpa,vpa,static-peak")
    args = parser.parse_args()
    traces = [(str(p), "long") for p in sorted(NAB.glob("*.csv"))]
    base = {"step_seconds": 60, "decision_interval_seconds": 300, "max_steps": args.max_steps}
    cells = grid(traces, args.policies.split(","), args.seeds, {}, base)
    console = Console()
    console.print(f"{len(cells)} cells ({len(traces)} traces x {args.policies} x {args.seeds} seeds)")

    started = time.perf_counter()
    for cell in track(cells, description="serial reference"):
        run_replay(cell["trace"], cell["format"], cell["policy"], cell["config"], cell["seed"], None)
    walls = {"serial, no Ray": time.perf_counter() - started}
    for cpus in sorted({1, args.cpus}):
        started = time.perf_counter()
        rows = sweep(cells, num_cpus=cpus)
        walls[f"Ray, {cpus} CPU"] = time.perf_counter() - started
        assert len(rows) == len(cells)

    one = walls["Ray, 1 CPU"]
    table = Table(title="replay sweep scaling")
    for column in ("run", "wall s", "cells/s", "speed-up vs Ray 1 CPU"):
        table.add_column(column, justify="right")
    for name, wall in walls.items():
        table.add_row(name, f"{wall:.1f}", f"{len(cells) / wall:.2f}", f"{one / wall:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
