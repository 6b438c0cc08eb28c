"""What each dashboard page shows, read through the same service functions as the REST API (no queries
of its own). Every function returns plain data for a template; a missing model or series is a note on
the page, never an error."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from service.dashboard import charts
from service.decisions import repository as decisions_repo
from service.decisions import service as decisions
from service.decisions.schemas import DecisionOut
from service.errors import DatabaseUnavailable, ForesightError
from service.forecasts import repository as forecasts_repo
from service.forecasts import service as forecasts
from service.forecasts.schemas import ForecastOut, SeriesAccuracy
from service.forecasts.served import to_api
from service.inventory import service as inventory
from service.inventory.schemas import WorkloadOut
from service.nodes import service as nodes
from service.power import domain as power_domains
from service.readings import find_series, observed
from service.replays import service as replays
from service.replays.schemas import ReplayOut
from service.telemetry import service as telemetry
from service.telemetry.schemas import SamplesOut

LIMIT = 500
STALE_STEPS = 3  # a series whose latest sample is older than this many sampling steps is stale
NEAR_BUDGET = 0.8  # a domain at or above this share of its budget (now or forecast p95) is "near budget"
DEFAULT_LOAD_METRIC = "requests_per_second"  # what the scaling recommendation reads without capacity_metric


@dataclass
class SeriesView:
    """One series as charted: recent history, the next-hour forecast, or why there is none."""

    series_id: int | None = None
    unit: str = ""
    samples: SamplesOut | None = None
    forecast: ForecastOut | None = None
    current: float | None = None
    notes: list[str] = field(default_factory=list)
    stale: str | None = None
    """Why the series looks stale (its latest sample is older than a few sampling steps), else None."""

    def next_hour(self, level: str) -> float | None:
        if self.forecast is None or not self.forecast.points:
            return None
        return max(p.quantiles.get(level, p.mean) for p in self.forecast.points)


def series_view(session: Session, cluster: str, kind: str, entity: str, metric: str) -> SeriesView:
    """History (the last 48 steps or 6 hours) and the next hour's forecast of one entity's metric."""
    series = find_series(session, cluster, kind, entity, metric)
    if series is None:
        return SeriesView(notes=[f"no {metric!r} telemetry for {kind} {entity!r} yet"])
    view = SeriesView(series_id=series.id, unit=series.unit)
    seen = observed(session, series.id, 48)
    if seen.last_ts is None:
        view.notes.append("the series has no samples yet")
        return view
    view.current = seen.values[-1]
    last = datetime.fromtimestamp(seen.last_ts, UTC)
    view.stale = staleness(f"{kind} {entity} {metric}", last, seen.step_seconds)
    span = max(timedelta(hours=6), timedelta(seconds=48 * seen.step_seconds))
    window = telemetry.SampleWindow(last - span, last + timedelta(seconds=1), None, 400)
    view.samples = telemetry.downsampled_samples(session, series.id, window)
    horizon = max(1, min(288, round(3600 / max(seen.step_seconds, 1.0))))
    try:
        view.forecast = to_api(forecasts.forecast(session, series.id, horizon))
    except DatabaseUnavailable:
        raise
    except ForesightError as error:
        trained = _trained_horizon(session, series.id)
        if trained is None or trained >= horizon:
            view.notes.append(f"no forecast: {error.message}")
            return view
        try:  # a model fitted for a shorter horizon than an hour of steps: show what it forecasts
            view.forecast = to_api(forecasts.forecast(session, series.id, trained))
            view.notes.append(f"forecast shown for {trained} steps, the horizon its model was trained for")
        except ForesightError as retry:
            view.notes.append(f"no forecast: {retry.message}")
    return view


def _trained_horizon(session: Session, series_id: int) -> int | None:
    found = forecasts_repo.model_of_series(session, series_id)
    horizon = found[0].params.get("horizon") if found is not None else None
    return int(horizon) if isinstance(horizon, int | float) and horizon >= 1 else None


def staleness(what: str, last: datetime, step_seconds: float, now: datetime | None = None) -> str | None:
    """A banner's text when the latest sample is older than `STALE_STEPS` sampling steps."""
    age = ((now or datetime.now(UTC)) - last).total_seconds()
    if age <= STALE_STEPS * max(step_seconds, 1.0):
        return None
    return (f"{what}: the latest sample is {_age(age)} old ({last:%Y-%m-%d %H:%M} UTC; it is sampled "
            f"every {_age(step_seconds)}) — forecasts and decisions for now rest on old data")  # fmt: skip


def _age(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}".replace(".0 ", " ")
    return f"{seconds:.0f} s"


def _replica_history(session: Session, w: WorkloadOut, since: datetime | None) -> list[tuple[datetime, int]]:
    """The replicas the workload's recent scaling decisions asked for (oldest first)."""
    items, _ = _decisions(session, 100, kind="scaling", target=w.name, cluster=w.cluster)
    points = [(d.created_at, int(d.params["replicas"])) for d in items if "replicas" in d.params]
    return sorted(p for p in points if since is None or p[0] >= since)


def _decisions(session: Session, limit: int = 50, **filters: Any) -> tuple[list[DecisionOut], int]:
    page = decisions.audit_log(session, decisions_repo.DecisionFilter(**filters), limit, 0)
    return page.items, page.total


def _awaiting(session: Session, limit: int) -> tuple[list[DecisionOut], int]:
    """Proposed decisions an operator can act on (shadow ones are records only, never approved)."""
    proposed, _ = _decisions(session, LIMIT, status="proposed")
    actionable = [d for d in proposed if d.mode != "shadow"]
    return actionable[:limit], len(actionable)


def _workload_row(session: Session, w: WorkloadOut) -> dict[str, Any]:
    metric = w.capacity_metric or DEFAULT_LOAD_METRIC
    view = series_view(session, w.cluster, "workload", w.name, metric)
    since = view.samples.timestamps[0] if view.samples is not None and view.samples.timestamps else None
    figure = charts.small_multiple(f"{w.name} · {metric}", view.unit, view.samples, view.forecast,
                                   _replica_history(session, w, since))  # fmt: skip
    return {"workload": w, "view": view, "p50": view.next_hour("0.5"), "p90": view.next_hour("0.9"),
            "figure": figure}  # fmt: skip


def domain_rows(session: Session, with_forecast: bool) -> list[dict[str, Any]]:
    """Every power domain with its power now, caps in force and (optionally) the forecast fan."""
    rows = []
    for d in inventory.list_domains(session, None, LIMIT, 0):
        row: dict[str, Any] = {
            "domain": d,
            "power": None,
            "share": None,
            "caps": {},
            "brake": False,
            "notes": [],
        }
        rows.append(row)
        if d.budget_watts is None or not d.nodes:
            row["notes"].append("no budget set" if d.budget_watts is None else "no nodes attached")
            continue
        try:
            state = power_domains.load(session, d.name, d.cluster, 12, 0.01, with_forecast=False)
        except DatabaseUnavailable:
            raise
        except ForesightError as error:
            row["notes"].append(error.message)
            continue
        readings = [v for v in state.evidence["power_watts_now"].values() if v is not None]
        row["power"] = sum(readings) if readings else None
        row["share"] = row["power"] / d.budget_watts if row["power"] is not None else None
        row["caps"] = {
            s.name: s.power_limit_watts for s in state.inputs.servers if s.power_limit_watts is not None
        }
        row["brake"] = any(s.braked for s in state.inputs.servers)
        row["notes"].extend(state.notes)
        view = series_view(session, d.cluster, "power_domain", d.name, power_domains.TOTAL_METRIC)
        row["view"] = view
        if view.series_id is None:
            row["notes"].append(
                f"no {power_domains.TOTAL_METRIC!r} series for the domain total: send one (entity kind "
                "power_domain) to forecast it"
            )
        p95 = view.next_hour("0.95")
        row["near"] = max(row["share"] or 0.0, (p95 or 0.0) / d.budget_watts) >= NEAR_BUDGET
        if with_forecast and (view.samples is not None or view.forecast is not None):
            row["figure"] = charts.forecast_figure(
                f"{d.name} ({d.cluster})", "W", view.samples, view.forecast, d.budget_watts
            )
    return rows


def overview(session: Session) -> dict[str, Any]:
    """Workloads by cluster with load and next-hour forecast, pending decisions, hot domains, sick nodes."""
    workloads = [_workload_row(session, w) for w in inventory.list_workloads(session, None, LIMIT, 0)]
    clusters: dict[str, list[dict[str, Any]]] = {}
    for row in workloads:
        clusters.setdefault(row["workload"].cluster, []).append(row)
    pending, pending_total = _awaiting(session, 20)
    domains = domain_rows(session, with_forecast=False)
    sick = [n for n in inventory.list_nodes(session, None, LIMIT, 0) if n.status != "healthy"]
    stale = [r["view"].stale for r in workloads if r["view"].stale]
    stale += [d["view"].stale for d in domains if d.get("view") is not None and d["view"].stale]
    return {
        "clusters": clusters, "pending": pending, "pending_total": pending_total,
        "near_budget": [d for d in domains if d.get("near")], "domains": domains, "unhealthy": sick,
        "workloads": workloads, "stale": stale,
    }  # fmt: skip


def workload(session: Session, cluster: str, name: str) -> dict[str, Any]:
    """One workload: load chart with the forecast fan, its decisions with explanations, live accuracy."""
    w = inventory.get_workload(session, name, cluster)
    metric = w.capacity_metric or DEFAULT_LOAD_METRIC
    view = series_view(session, w.cluster, "workload", w.name, metric)
    figure = charts.forecast_figure(f"{metric} of {w.name}", view.unit, view.samples, view.forecast)
    since = view.samples.timestamps[0] if view.samples is not None and view.samples.timestamps else None
    charts.with_replicas(figure, _replica_history(session, w, since))
    accuracy: SeriesAccuracy | None = None
    if view.series_id is not None:
        items = forecasts.accuracy(session, [view.series_id]).items
        accuracy = items[0] if items else None
    history, total = _decisions(session, 50, target=w.name, cluster=w.cluster)
    return {"w": w, "metric": metric, "view": view, "figure": figure, "accuracy": accuracy,
            "decisions": history, "decisions_total": total,
            "stale": [view.stale] if view.stale else []}  # fmt: skip


def power(session: Session) -> dict[str, Any]:
    """Each domain's power vs budget with forecast bands and caps, and the oversubscription answers."""
    answers, _ = _decisions(session, 10, kind="oversubscription")
    caps, _ = _decisions(session, 20, kind="power")
    return {"domains": domain_rows(session, with_forecast=True), "answers": answers, "power_decisions": caps}


def nodes_page(session: Session) -> dict[str, Any]:
    """Every node — the unhealthy ones first — with its events, mitigations (effect interval, fallback
    and override) and outcomes, under the mitigation model's estimated saving."""
    rows = []
    listed = inventory.list_nodes(session, None, LIMIT, 0)
    for n in sorted(listed, key=lambda n: (n.status == "healthy", n.cluster, n.name)):
        events = nodes.list_events(session, n.name, n.cluster, 20, 0)
        mitigations, _ = _decisions(session, 10, kind="mitigation", target=n.name, cluster=n.cluster)
        rows.append({"node": n, "events": events, "mitigations": mitigations})
    return {"nodes": rows, "savings": nodes.savings(session)}


def decisions_page(session: Session, filters: dict[str, str | None], limit: int = 100) -> dict[str, Any]:
    """The approval queue and the filtered audit log."""
    queue, queue_total = _awaiting(session, 100)
    log, total = _decisions(session, limit, **filters)
    return {"queue": queue, "queue_total": queue_total, "log": log, "total": total, "filters": filters}


def savings_page(session: Session) -> dict[str, Any]:
    """Workloads whose stored load can be replayed, and the savings runs so far (newest first)."""
    workloads = inventory.list_workloads(session, None, LIMIT, 0)
    runs = [r for r in replays.page(session, 200, 0).items if r.kind == "savings"]
    return {"workloads": workloads, "runs": runs}


def replay_view(run: ReplayOut) -> dict[str, Any]:
    """A savings run's charts: replica-hours against violations, and each side by side per policy."""
    summary = run.summary or {}
    if run.kind != "savings" or "comparison" not in summary:
        return {}
    comparison = summary["comparison"]
    return {
        "savings_figure": charts.savings_figure(comparison, summary.get("hpa_curve", [])),
        "hours_figure": charts.policy_bars(comparison, "replica_hours", "Replica-hours", "replica-hours"),
        "violations_figure": charts.policy_bars(
            comparison, "sla_violation_rate", "SLA violations", "% of windows", 100.0
        ),
        "saved": summary.get("savings", {}),
    }
