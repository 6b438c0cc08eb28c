"""Causal node mitigation vs the legacy rule vs the oracle, on semi-synthetic events with known outcomes.

History is drawn from `policies.mitigation_synthetic` (its docstring is the generating process: the legacy
rule plus noise logs the actions, so the history is confounded; effects vary with signals, workload and
hardware). The causal model is fitted on the history, then every policy decides a fresh test set and is
scored by the true expected downtime of what it chose. A probe drawn only from the thin-data region (v100
nodes running training, ~0.3% of history) shows whether the fallback fires where the data is thin. The
out-of-service cap is set out of reach here so that the comparison is about the choice of action.

    .venv/bin/python bench/mitigation.py [--train 20000] [--test 10000] [--probe 500] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from policies.mitigation import CausalMitigationPolicy  # noqa: E402
from policies.mitigation_model import MitigationModel  # noqa: E402
from policies.mitigation_rules import LegacyMitigationRule  # noqa: E402
from policies.mitigation_synthetic import SyntheticMitigationData, generate  # noqa: E402
from policies.mitigation_types import MitigationInput  # noqa: E402
from policies.types import Decision  # noqa: E402

console = Console()
CHUNK = 1000


def decide_all(
    policy: CausalMitigationPolicy, data: SyntheticMitigationData, progress: Progress, label: str
) -> list[Decision]:
    """Causal decisions for every event of `data`, in chunks so the progress bar moves."""
    inputs = [MitigationInput(f"node-{i}", e, 0, 10**6) for i, e in enumerate(data.events)]
    task = progress.add_task(label, total=len(inputs))
    out: list[Decision] = []
    for start in range(0, len(inputs), CHUNK):
        out.extend(policy.decide_many(inputs[start : start + CHUNK]))
        progress.advance(task, len(inputs[start : start + CHUNK]))
    return out


def scores(data: SyntheticMitigationData, decisions: list[Decision]) -> dict[str, np.ndarray]:
    """True expected downtime per event of each policy's choice (and of the oracle)."""
    legacy = LegacyMitigationRule()
    return {
        "causal": data.downtime_of([d.action for d in decisions]),
        "causal (no fallback)": data.downtime_of([d.details["causal_choice"] or d.action for d in decisions]),
        "legacy": data.downtime_of([legacy.action_for(e)[0] for e in data.events]),
        "oracle": data.downtime_of(data.oracle()),
    }


def coverage(model: MitigationModel, data: SyntheticMitigationData, alpha: float = 0.2) -> str:
    """How often the effect interval vs the legacy action contains the true effect (non-legacy actions)."""
    keep = ~data.hard_fault
    events = [e for e, k in zip(data.events, keep, strict=True) if k]
    legacy = [LegacyMitigationRule().action_for(e)[0] for e in events]
    est = model.estimate(events, legacy, alpha)
    order = [data.actions.index(a) for a in est.actions]
    truth = data.expected[keep][:, order]
    rows = np.arange(len(events))
    leg = np.array([est.actions.index(a) for a in legacy])
    true_effect = truth - truth[rows, leg][:, None]
    inside = (est.lower <= true_effect) & (true_effect <= est.upper)
    other = np.ones_like(inside, dtype=bool)
    other[rows, leg] = False
    return f"{100 * inside[other].mean():.1f}%"


def table(title: str, downtime: dict[str, np.ndarray], fallback: np.ndarray) -> Table:
    legacy, oracle = downtime["legacy"].mean(), downtime["oracle"].mean()
    out = Table(title=title)
    for column in (
        "policy",
        "downtime / event (min)",
        "vs legacy",
        "gap to oracle",
        "regret / event",
        "fallback",
    ):
        out.add_column(column, justify="left" if column == "policy" else "right")
    for name, values in downtime.items():
        mean = values.mean()
        rate = f"{100 * fallback.mean():.1f}%" if name == "causal" else ""
        out.add_row(
            name,
            f"{mean:.2f}",
            f"{100 * (mean / legacy - 1):+.1f}%",
            f"{100 * (mean / oracle - 1):+.1f}%",
            f"{mean - oracle:.2f}",
            rate,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=20000, help="logged history events to fit on")
    parser.add_argument("--test", type=int, default=10000, help="fresh events to decide")
    parser.add_argument("--probe", type=int, default=500, help="events drawn from the thin-data region")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trees", type=int, default=200, help="causal forest trees (multiple of 4)")
    parser.add_argument("--nuisance", type=int, default=150, help="LightGBM trees per nuisance model")
    args = parser.parse_args()

    started = time.perf_counter()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        step = progress.add_task("generate history and test events", total=3)
        history = generate(args.train, seed=args.seed)
        progress.advance(step)
        test = generate(args.test, seed=args.seed + 1)
        progress.advance(step)
        probe = generate(args.probe, seed=args.seed + 2, thin_only=True)
        progress.advance(step)
        fit = progress.add_task(f"fit double ML + causal forest on {args.train} events", total=1)
        model = MitigationModel(n_estimators=args.trees, nuisance_estimators=args.nuisance)
        model.fit(history.records, seed=args.seed)
        progress.advance(fit)
        policy = CausalMitigationPolicy(model)
        decisions = decide_all(policy, test, progress, "decide the test events")
        probe_decisions = decide_all(policy, probe, progress, "decide the thin-region probe")

    fell = np.array([d.fell_back for d in decisions])
    downtime = scores(test, decisions)
    console.print(table(f"Test set: {args.test} events (seed {args.seed})", downtime, fell))

    probe_fell = np.array([d.fell_back for d in probe_decisions])
    console.print(
        table(
            f"Thin-data region probe: {args.probe} v100 + training events",
            scores(probe, probe_decisions),
            probe_fell,
        )
    )

    summary = Table(title="Fallback and model")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    legacy, oracle, causal = (downtime[k].mean() for k in ("legacy", "oracle", "causal"))
    summary.add_row("downtime reduction vs legacy", f"{100 * (1 - causal / legacy):.1f}% (goal >= 50%)")
    summary.add_row("gap to oracle", f"{100 * (causal / oracle - 1):.1f}% (goal <= 10%)")
    summary.add_row("regret / event (min)", f"{causal - oracle:.2f}")
    summary.add_row("fallback rate, test set", f"{100 * fell.mean():.1f}%")
    thin = test.thin
    summary.add_row(
        "fallback rate, thin region",
        f"{100 * probe_fell.mean():.1f}% of probe; {fell[thin].sum()}/{thin.sum()} test",
    )
    summary.add_row("fallback rate, elsewhere", f"{100 * fell[~thin].mean():.1f}%")
    summary.add_row(
        "oracle action chosen",
        f"{100 * np.mean([d.action == o for d, o in zip(decisions, test.oracle(), strict=True)]):.1f}%",
    )
    reasons = Counter(str(d.details["fallback"]) for d in decisions if d.fell_back)
    summary.add_row("fallback reasons", "; ".join(f"{k}: {v}" for k, v in reasons.most_common()))
    summary.add_row(
        f"{100 * (1 - policy.alpha):.0f}% interval coverage of true effect vs legacy",
        coverage(model, test, policy.alpha),
    )
    info = model.describe()
    summary.add_row("history events used", f"{info['n_events']} (dropped {info['dropped']})")
    summary.add_row(
        "nuisance R2 downtime / accuracy action",
        f"{info['metrics']['nuisance_r2_downtime']:.2f} / {info['metrics']['nuisance_accuracy_action']:.2f}",
    )
    summary.add_row("fit seconds", f"{info['fit_seconds']:.1f}")
    summary.add_row("total seconds", f"{time.perf_counter() - started:.1f}")
    console.print(summary)


if __name__ == "__main__":
    main()
