"""Run replays in a background thread of the API process and write their results in one transaction.

A run reports progress (throttled) in short transactions of its own; its results (summary, report,
timeline) land together with status `succeeded`, or not at all — a failure stores only `failed` and
why. A process that dies mid-run leaves a row whose heartbeat stops; the watchdog job marks it failed.
"""

from __future__ import annotations

import gzip
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policies.types import PolicyError
from replay.engine import run_replay
from replay.sweep import compare_policies
from replay.traces import ReplayError
from service.db import Database
from service.ops.logging import get_logger
from service.replays import repository as repo
from service.replays.savings import curve_point, savings

log = get_logger("foresight.replays")
_EXECUTOR: ThreadPoolExecutor | None = None
_LOCK = threading.Lock()
PROGRESS_EVERY_SECONDS = 1.0


def executor() -> ThreadPoolExecutor:
    """One replay at a time per process: a replay is CPU-bound, and the API must stay responsive."""
    global _EXECUTOR
    with _LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay")
        return _EXECUTOR


def submit(database: Database, run_id: int, trace_path: Path | None, trace_csv_gz: bytes | None) -> None:
    executor().submit(_run_safely, database, run_id, trace_path, trace_csv_gz)


def _now() -> datetime:
    return datetime.now(UTC)


def _progress_writer(database: Database, run_id: int) -> Callable[[float], None]:
    last = [0.0]

    def write(fraction: float) -> None:
        if time.monotonic() - last[0] < PROGRESS_EVERY_SECONDS and fraction < 1.0:
            return
        last[0] = time.monotonic()
        with database.session() as session:
            repo.set_progress(session, run_id, round(min(max(fraction, 0.0), 1.0), 4), _now())

    return write


def _run_safely(database: Database, run_id: int, trace_path: Path | None, trace_csv_gz: bytes | None) -> None:
    try:
        _run(database, run_id, trace_path, trace_csv_gz)
    except (ReplayError, PolicyError, ValueError, KeyError) as error:
        _fail(database, run_id, str(error))
    except Exception as error:  # the row must say why, whatever happened
        log.error("replay_failed", run_id=run_id, error=repr(error), trace=traceback.format_exc(limit=5))
        _fail(database, run_id, f"internal error: {type(error).__name__}: {error}")


def _fail(database: Database, run_id: int, message: str) -> None:
    with database.session() as session:
        row = repo.get(session, run_id)
        if row is not None:
            row.status, row.error, row.finished_at = "failed", message[:4000], _now()


def _at_target(config: dict[str, Any], target: float) -> dict[str, Any]:
    return {**config, "scaling": {**config.get("scaling", {}), "target_utilisation": target}}


def _run(database: Database, run_id: int, trace_path: Path | None, trace_csv_gz: bytes | None) -> None:
    with database.session() as session:
        row = repo.get(session, run_id)
        if row is None:
            return
        row.status, row.started_at, row.heartbeat_at = "running", _now(), _now()
        kind, fmt, policies = row.kind, row.trace_format, list(row.policies)
        seeds, config, name = row.seeds, dict(row.config), row.trace
    targets = [float(t) for t in config.pop("hpa_targets", None) or []]
    with tempfile.TemporaryDirectory(prefix="foresight-replay-") as scratch:
        work = Path(scratch)
        if trace_path is None:
            assert trace_csv_gz is not None
            trace_path = work / name
            trace_path.write_bytes(gzip.decompress(trace_csv_gz))
        out = work / "out"
        progress = _progress_writer(database, run_id)
        results: dict[str, Any]
        if kind == "run":
            summary = run_replay(
                trace_path, fmt, policies[0], config, seed=0, output_dir=out, progress=progress
            )
            results = {"summary": summary, "timeline_gz": gzip.compress((out / "timeline.csv").read_bytes())}
        else:
            total = (len(policies) + len(targets)) * seeds
            done = [0]

            def advance(policy: str, seed: int) -> None:
                done[0] += 1
                progress(done[0] / total)

            table = compare_policies(
                trace_path, fmt, policies, config, seeds, output_dir=out, advance=advance
            )
            results = {"summary": table, "timeline_gz": None}
            if kind == "savings":
                curve = [
                    curve_point(t, compare_policies(trace_path, fmt, ["hpa"], _at_target(config, t), seeds,
                                                    advance=advance))
                    for t in targets
                ]  # fmt: skip
                summary = {"comparison": table, "hpa_curve": curve, "savings": savings(table, curve, config)}
                results = {"summary": summary, "timeline_gz": None}
        report = gzip.compress((out / "report.html").read_bytes())
    with database.session() as session:  # everything at once, or (on failure above) nothing
        row = repo.get(session, run_id)
        if row is None:
            return
        row.summary, row.timeline_gz, row.report_gz = results["summary"], results["timeline_gz"], report
        row.status, row.progress, row.finished_at = "succeeded", 1.0, _now()
