"""Start, list and read replay runs. A request is checked before it is queued (policy names, config,
a readable trace), so a bad one is a 422 at once rather than a failed run later."""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from policies.slo import strict_number
from replay.adapters import POLICIES
from replay.engine import validate_config
from replay.traces import ReplayError, load_trace
from service.db import Database
from service.errors import Conflict, InvalidInput, NotFound
from service.models import ReplayRun
from service.replays import repository as repo
from service.replays import runner, sources
from service.replays.bundled import BUNDLED
from service.replays.schemas import BundledTrace, ReplayOut, ReplayPage, ReplayRequest


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, details=[{"loc": ["body", field], "msg": message}])


# config knob -> (lower bound, bound included, whole number): checked here so a bad knob is a 422 at once,
# not a queued run that fails
KNOBS: dict[str, tuple[float, bool, bool]] = {
    "step_seconds": (0, False, False), "decision_interval_seconds": (0, False, False),
    "speed": (0, False, False), "tile": (1, True, True), "max_steps": (1, True, True),
    "cold_start_seconds": (0, True, False), "warmup_seconds": (0, True, False),
}  # fmt: skip


def _check_knobs(config: dict[str, object]) -> None:
    for key, (low, inclusive, whole) in KNOBS.items():
        if key not in config or config[key] is None:
            continue
        value = config[key]
        number = strict_number(value)
        bound = f">= {low:g}" if inclusive else f"> {low:g}"
        if number is None or (whole and number != int(number)):
            kind = "a whole number" if whole else "a finite number"
            raise _bad("config", f"config.{key} must be {kind} {bound}, got {value!r}")
        if number < low or (number == low and not inclusive):
            raise _bad("config", f"config.{key} must be {bound}, got {value!r}")


def _check(
    session: Session, body: ReplayRequest
) -> tuple[str, str, Path | None, bytes | None, dict[str, Any]]:
    """(trace name, format, bundled path or None, gzipped upload or None, the config to run), or a 422
    naming the field. A stored source's workload settings are the config's defaults."""
    for name in body.policies or [body.policy or ""]:
        if name not in POLICIES:
            raise _bad(
                "policies" if body.policies else "policy",
                f"unknown policy {name!r}; choose from {', '.join(POLICIES)}",
            )
    config = dict(body.config)
    if body.source is not None:
        if body.trace_format not in (None, "long"):
            raise _bad("trace_format", "stored telemetry replays as a long trace")
        found = sources.trace_of(session, body.source)
        config = sources.merged(found.defaults, config)
        body = body.model_copy(
            update={"trace_csv": found.csv, "trace_name": found.name, "trace_format": "long"}
        )
    try:
        config = validate_config(config)
    except ReplayError as error:
        raise _bad("config", str(error)) from error
    _check_knobs(config)
    if body.trace is not None:
        bundled = BUNDLED.get(body.trace)
        if bundled is None:
            raise _bad("trace", f"unknown bundled trace {body.trace!r}; choose from {', '.join(BUNDLED)}")
        if body.trace_format is not None and body.trace_format != bundled.trace_format:
            raise _bad("trace_format", f"{bundled.name} is a {bundled.trace_format} trace")
        return bundled.name, bundled.trace_format, bundled.path, None, config
    assert body.trace_csv is not None and body.trace_format is not None
    data = body.trace_csv.encode()
    with tempfile.TemporaryDirectory(prefix="foresight-trace-") as scratch:
        path = Path(scratch) / body.trace_name
        path.write_bytes(data)
        try:
            load_trace(path, body.trace_format)
        except (ReplayError, ValueError) as error:
            raise _bad("trace_csv", f"the uploaded trace cannot be replayed: {error}") from error
    return body.trace_name, body.trace_format, None, gzip.compress(data), config


def start(
    session: Session, database: Database, body: ReplayRequest, actor: str
) -> tuple[ReplayOut, Callable[[], None]]:
    """Queue a replay: the row now, and the job to hand to the worker once the row is committed."""
    name, fmt, path, upload, config = _check(session, body)
    if body.hpa_targets:
        config["hpa_targets"] = list(body.hpa_targets)
    kind = "savings" if body.hpa_targets else "compare" if body.policies else "run"
    row = repo.add(
        session,
        ReplayRun(
            kind=kind,
            status="queued",
            trace=name,
            trace_format=fmt,
            policies=list(body.policies or [body.policy or ""]),
            seeds=body.seeds if body.policies else 1,
            config=config,
            created_by=actor,
            progress=0.0,
            trace_csv_gz=upload,
        ),
    )
    run_id = row.id
    return out(row), lambda: runner.submit(database, run_id, path, upload)


def out(row: ReplayRun, has_report: bool = False, has_timeline: bool = False) -> ReplayOut:
    return ReplayOut.model_validate(
        {
            "id": row.id, "kind": row.kind, "status": row.status, "trace": row.trace,
            "trace_format": row.trace_format, "policies": list(row.policies), "seeds": row.seeds,
            "config": row.config, "created_by": row.created_by, "created_at": row.created_at,
            "started_at": row.started_at, "finished_at": row.finished_at, "progress": row.progress,
            "error": row.error, "summary": row.summary if row.status == "succeeded" else None,
            "has_report": has_report, "has_timeline": has_timeline,
        }
    )  # fmt: skip


def _row(session: Session, run_id: int) -> ReplayRun:
    row = repo.get(session, run_id)
    if row is None:
        raise NotFound(f"replay {run_id} does not exist; list replays with GET /v1/replays")
    return row


def get(session: Session, run_id: int) -> ReplayOut:
    found = repo.get_listed(session, run_id)
    if found is None:
        raise NotFound(f"replay {run_id} does not exist; list replays with GET /v1/replays")
    return out(*found)


def page(session: Session, limit: int, offset: int) -> ReplayPage:
    rows, total = repo.page(session, limit, offset)
    return ReplayPage(items=[out(*r) for r in rows], total=total)


def artifact(session: Session, run_id: int, which: str) -> bytes:
    row = _row(session, run_id)
    blob = row.report_gz if which == "report" else row.timeline_gz
    if blob is None:
        state = (
            "has no timeline (comparisons have one report)"
            if row.status == "succeeded"
            else f"is {row.status}"
        )
        raise Conflict(f"replay {run_id} {state}; its {which} is not available")
    return gzip.decompress(blob)


def trace_csv(session: Session, run_id: int) -> bytes:
    """The trace a replay ran on, as a file `foresight replay run|compare --trace` reads."""
    row = _row(session, run_id)
    if row.trace_csv_gz is not None:
        return gzip.decompress(row.trace_csv_gz)
    bundled = BUNDLED.get(row.trace)
    if bundled is None:
        raise Conflict(f"replay {run_id}'s trace {row.trace!r} is no longer bundled")
    data = bundled.path.read_bytes()
    return gzip.decompress(data) if bundled.path.suffix == ".gz" else data


def traces() -> list[BundledTrace]:
    return [
        BundledTrace(name=b.name, trace_format=b.trace_format, description=b.description)
        for b in BUNDLED.values()
    ]
