"""Writes docs/reliability.md from the JSON figures under bench/results/ (issue 7).

Reads every `*.json` there: load.json (bench/load.py), faults.json (bench/faults.py), and whatever the
fuzzing, security and backup scripts wrote (fuzz.json, security*.json, …). A missing or unreadable file
is reported as "not measured", never guessed. Files it has no dedicated section for are summarised from
their top-level figures, so a new results file shows up without changing this script.

    .venv/bin/python bench/reliability_report.py [--results bench/results] [--output docs/reliability.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOT_MEASURED = "not measured"
FUZZ_CASES = ("cases_total", "cases_run", "total_cases", "cases", "examples", "calls", "requests")
FAILURES = ("failures_total", "failures", "failed", "errors")
BAD_INPUTS = ("bad_inputs_tried", "bad_inputs", "attempts", "payloads", "negative_cases", "cases")
LOST_KEYS = ("lost", "data_lost", "samples_lost", "rows_lost")


def load_results(directory: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Every parseable JSON object in `directory` by file stem, and the problems with the others."""
    found: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            problems[path.name] = f"unreadable ({type(error).__name__})"
            continue
        if isinstance(data, dict):
            found[path.stem] = data
        else:
            problems[path.name] = "not a JSON object"
    return found, problems


def find_number(data: Any, names: tuple[str, ...]) -> float | None:
    """The first numeric value under one of `names`, searching breadth-first (top level wins)."""
    queue = [data]
    while queue:
        current = queue.pop(0)
        if isinstance(current, dict):
            for name in names:
                value = current.get(name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return float(value)
            queue.extend(v for v in current.values() if isinstance(v, dict | list))
        elif isinstance(current, list):
            queue.extend(v for v in current if isinstance(v, dict | list))
    return None


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value.is_integer() or abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def load_headline(load: dict[str, Any] | None) -> str:
    if not load:
        return NOT_MEASURED
    levels = load.get("levels", [])
    top = levels[-1] if levels else {}
    best = max((lv.get("ok_rps") or 0 for lv in levels), default=0)
    text = (
        f"{load.get('levels_held', 0)}/{len(levels)} rising levels up to "
        f"{fmt(load.get('max_rate_held_rps'))} req/s offered held (no 5xx, every 429/503 with Retry-After, "
        f"{fmt((load.get('ingest_check') or {}).get('lost'))} samples lost); throughput tops out at "
        f"{fmt(best)} ok/s on this machine and overload queues (p99 {fmt(_seconds(top.get('p99_ms')))} s at "
        f"{fmt(top.get('offered_rps'))} req/s offered)"
    )
    soak = load.get("soak")
    if soak:
        verdict = "flat" if soak.get("flat") else "NOT flat"
        text += (
            f"; soak {fmt(soak.get('minutes'))} min: RSS {verdict} ({fmt(soak.get('rss_half_mb'))} → "
            f"{fmt(soak.get('rss_end_mb'))} MB over the second half)"
        )
    else:
        text += "; soak not measured"
    return text


def _seconds(ms: Any) -> float | None:
    return None if ms is None else round(float(ms) / 1000, 1)


def faults_headline(faults: dict[str, Any] | None) -> str:
    if not faults:
        return NOT_MEASURED
    outages = faults.get("outages", [])
    text = (
        f"{faults.get('faults_survived', 0)}/{len(outages)} Postgres stop/restarts under "
        f"{fmt(faults.get('config', {}).get('clients'))} ingest clients, same service process, recovery "
        f"≤ {fmt(faults.get('recovery_seconds_max'))} s"
    )
    jobs = faults.get("job_tests")
    if jobs:
        text += f"; job tests (two replicas, SIGKILL mid-job): {'passed' if jobs.get('passed') else 'FAILED'}"
    return text


def data_lost(results: dict[str, Any]) -> str:
    parts = []
    for name, data in sorted(results.items()):
        lost = find_number(data, LOST_KEYS)
        if lost is not None:
            parts.append((name, lost))
    if not parts:
        return NOT_MEASURED
    total = sum(lost for _, lost in parts)
    return f"{fmt(total)} ({', '.join(f'{name}: {fmt(lost)}' for name, lost in parts)})"


def security_files(results: dict[str, Any]) -> dict[str, Any]:
    return {
        name: data for name, data in results.items() if name.startswith(("security", "bad_input", "auth"))
    }


def headline(results: dict[str, Any]) -> list[str]:
    fuzz = results.get("fuzz")
    fuzz_cases = find_number(fuzz, FUZZ_CASES) if fuzz else None
    fuzz_failures = find_number(fuzz, FAILURES) if fuzz else None
    fuzz_text = NOT_MEASURED if fuzz_cases is None else fmt(fuzz_cases)
    if fuzz_cases is not None and fuzz_failures is not None:
        fuzz_text += f" ({fmt(fuzz_failures)} failures)"
    bad = [find_number(data, BAD_INPUTS) for data in security_files(results).values()]
    bad_total = sum(b for b in bad if b is not None) if any(b is not None for b in bad) else None
    return [
        "| figure | value |",
        "|---|---|",
        f"| fuzz cases run | {fuzz_text} |",
        f"| load held | {load_headline(results.get('load'))} |",
        f"| faults survived | {faults_headline(results.get('faults'))} |",
        f"| bad inputs tried | {fmt(bad_total) if bad_total is not None else NOT_MEASURED} |",
        f"| data lost | {data_lost(results)} |",
    ]


def load_section(load: dict[str, Any]) -> list[str]:
    mix = ", ".join(
        f"{int(share * 100)}% {kind}" for kind, share in load.get("config", {}).get("mix", {}).items()
    )
    cpus = fmt(load.get("machine", {}).get("cpus"))
    lines = [
        "## Load", "",
        f"`{load.get('command', 'bench/load.py')}`, measured {load.get('measured_at', '?')} on {cpus} CPUs "
        f"shared with other work (load average {fmt(load.get('machine', {}).get('load_average_at_end'))} "
        f"at the end). Mix: {mix}. Latency counts from each request's scheduled arrival "
        "(client-side queuing included).", "",
        "| offered req/s | done/s | ok/s | p50 ms | p99 ms | error rate | 429/503 | 5xx | transport errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for lv in load.get("levels", []):
        cells = [fmt(lv.get(k)) for k in ("offered_rps", "throughput_rps", "ok_rps", "p50_ms", "p99_ms")]
        cells.append(f"{lv.get('error_rate', 0):.1%}")
        cells += [fmt(lv.get(k)) for k in ("shed_429_503", "server_errors_5xx", "transport_errors")]
        lines.append("| " + " | ".join(cells) + " |")
    check = load.get("ingest_check") or {}
    figures = ", ".join(f"{key.replace('_', ' ')} {fmt(value)}" for key, value in check.items())
    lines += ["", f"Ingest batches answered 200 against rows in Postgres after the run: {figures}."]
    soak = load.get("soak")
    if soak:
        get = soak.get
        lines += [
            "",
            f"Soak: {fmt(get('rate_rps'))} req/s of the same mix for {fmt(get('minutes'))} min; server RSS "
            f"{fmt(get('rss_start_mb'))} MB at the start, {fmt(get('rss_half_mb'))} MB at half time, "
            f"{fmt(get('rss_end_mb'))} MB at the end (max {fmt(get('rss_max_mb'))}); slope over the second "
            f"half {get('slope_second_half_mb_per_min')} MB/min, end/half {get('end_over_half_ratio')}, "
            f"end/start {get('end_over_start_ratio')}: **{'flat' if get('flat') else 'not flat'}**. "
            f"5xx during the soak: {fmt(get('traffic', {}).get('server_errors_5xx'))}.",
        ]
    return [*lines, ""]


def faults_section(faults: dict[str, Any]) -> list[str]:
    ingest, stored = faults.get("ingest", {}).get, faults.get("stored", {}).get
    lines = [
        "## Faults", "",
        f"`{faults.get('command', 'bench/faults.py')}`, measured {faults.get('measured_at', '?')}: a private "
        "Postgres cluster (initdb/pg_ctl on its own port) stopped and started under a multi-client ingest "
        "run; clients retry refused batches.", "",
        "| outage | mode | down s | refusals seen | recovered | recovery s |", "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for index, outage in enumerate(faults.get("outages", []), 1):
        lines.append(
            f"| {index} | {outage.get('mode')} | {fmt(outage.get('down_seconds'))} | "
            f"{fmt(outage.get('refusals_during'))} | {'yes' if outage.get('recovered') else 'NO'} | "
            f"{fmt(outage.get('recovery_seconds'))} |"
        )
    yes = {True: "yes", False: "NO"}
    lines += [
        "",
        f"Batches: {fmt(ingest('batches'))}; accepted first time {fmt(ingest('accepted_first_try'))}; "
        f"refused then retried and stored {fmt(ingest('refused_then_retried'))}; never accepted "
        f"{fmt(ingest('never_accepted'))}. Answers: 503/429 {fmt(ingest('answers_503_or_429'))} "
        f"(without Retry-After: {fmt(ingest('refusals_without_retry_after'))}), dropped connections "
        f"{fmt(ingest('connection_errors'))}, 500s {fmt(ingest('answers_500'))}; commits whose answer "
        f"was lost and whose resend came back as duplicates: {fmt(ingest('in_doubt_commits'))}.",
        "",
        f"Samples: accepted {fmt(stored('samples_sent_accepted'))}, stored {fmt(stored('samples_stored'))}, "
        f"lost {fmt(stored('samples_lost'))}, stored twice {fmt(stored('stored_more_than_once'))}, wrong "
        f"values {fmt(stored('wrong_values'))}. Service process unchanged: "
        f"{yes[bool(faults.get('service_same_process'))]}; ready afterwards: "
        f"{yes[bool(faults.get('ready_after'))]}.",
    ]
    jobs = faults.get("job_tests")
    if jobs:
        lines += ["", f"Background jobs (tests/reliability/test_jobs_multi.py): {jobs.get('summary')}."]
    return [*lines, ""]


def generic_section(name: str, data: dict[str, Any]) -> list[str]:
    """Top-level figures of a results file this script has no dedicated section for (two levels deep)."""
    lines = [f"## {name}", ""]

    def scalars(value: dict[str, Any]) -> str:
        items = [(k, v) for k, v in value.items() if isinstance(v, str | int | float | bool)]
        return ", ".join(f"{k} {fmt(v)}" for k, v in items[:12])

    for key, value in data.items():
        if isinstance(value, str | int | float | bool) or value is None:
            lines.append(f"- {key}: {fmt(value)}")
        elif isinstance(value, dict):
            if scalars(value):
                lines.append(f"- {key}: {scalars(value)}")
            for child, inner in value.items():
                if isinstance(inner, dict) and scalars(inner):
                    lines.append(f"- {key} / {child}: {scalars(inner)}")
    return [*lines[:40], ""]


def render(results: dict[str, Any], problems: dict[str, str]) -> str:
    lines = [
        "# Reliability", "",
        "<!-- generated by bench/reliability_report.py from bench/results/*.json; do not edit -->", "",
        "What was tried against Foresight and what held (issue 7). Figures come from the scripts' JSON "
        f"results; a figure without results reads \"{NOT_MEASURED}\".", "", *headline(results), "",
        "Tests that guard the same properties in CI: `tests/reliability/test_faults.py` (Postgres stopped "
        "and restarted under multi-client ingest, fast and immediate), "
        "`tests/reliability/test_jobs_multi.py` (two service processes run each job once per period; a "
        "process SIGKILLed with its model or audit row written but not committed leaves nothing behind, "
        "and the next run completes).", "",
    ]  # fmt: skip
    if "load" in results:
        lines += load_section(results["load"])
    if "faults" in results:
        lines += faults_section(results["faults"])
    for name in sorted(set(results) - {"load", "faults"}):
        lines += generic_section(name, results[name])
    missing = [name for name in ("load", "faults", "fuzz") if name not in results]
    if missing or problems:
        lines += ["## Not measured", ""]
        lines += [f"- {name}.json: no results file" for name in missing]
        lines += [f"- {name}: {problem}" for name, problem in problems.items()]
        lines.append("")
    lines += [
        "## Reproduce", "", "```bash",
        ".venv/bin/python bench/load.py --soak-minutes 10   # needs Postgres on 127.0.0.1:5432",
        ".venv/bin/python bench/faults.py --job-tests       # private cluster; needs initdb/pg_ctl",
        ".venv/bin/python bench/reliability_report.py       # this page", "```", "",
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args()
    results, problems = load_results(args.results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(results, problems))
    print(f"wrote {args.output} from {', '.join(sorted(results)) or 'no results'}")


if __name__ == "__main__":
    main()
