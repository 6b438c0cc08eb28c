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


# Hostile input (issue 18): each class probed through real HTTP on one kept-alive connection, what the
# service did before the fix, and what tests/reliability/test_hostile.py now asserts on both backends (a
# 4xx naming the field, the database unchanged, the next request on the same connection answered).
HOSTILE_CLASSES: tuple[tuple[str, str, str, str], ...] = (
    ("5,000-digit integer in a telemetry value; in node hardware", "500, connection dropped",
     "422 `body: a number in the JSON has more than 1000 digits`, before any parser runs",
     "test_oversized_numbers_and_deep_nesting_are_refused_before_parsing"),
    ("JSON nested 100,000 deep; labels 5,000 deep; workload `slo` and outcome `details` 900 deep",
     "500 (RecursionError), connection dropped",
     "422 `body: JSON nested N levels deep; at most 64 levels are accepted`",
     "test_oversized_numbers_and_deep_nesting_are_refused_before_parsing"),
    ("an unexpected exception in a route", "plain-text 500 without security headers or request id; "
     "keep-alive connection dropped", "JSON 500 `internal_error` with `request_id` (= X-Request-ID) and the "
     "security headers; the connection answers the next request",
     "test_a_500_is_json_with_request_id_and_keeps_the_connection"),
    ("ids, cluster, metric, label names and values, workload/node/key names with `\\n`, NUL, ESC, DEL, C1 "
     "controls, U+202E, surrounding spaces (body, path and query)", "2xx, stored",
     "422 naming the field (`entity.id`, `body.cluster`, `path.name`, `query.cluster`, …): one policy, "
     "service/names.py", "test_names_are_printable_without_surrounding_whitespace_everywhere"),
    ("`labels` given as `[]`, `false`, a string or a number", "2xx, stored", "422 `labels must be an object`",
     "test_labels_must_be_an_object"),
    ("workload `slo` / node `hardware` with booleans, numeric strings, NaN where numbers belong; unknown GPU "
     "profile; `replicas: \"5\"`", "2xx, stored (a later decision failed)",
     "422 naming the field (`slo.sla_penalty`, `body.hardware.profile`, `body.replicas`)",
     "test_config_numbers_are_strict_and_profiles_known"),
    ("node events before 1970, an `action_taken` with control characters or surrounding blanks, 10,000 "
     "signals, a boolean signal, cluster `probe\\n`",
     "2xx, stored", "422 naming `ts`, `action_taken`, `signals` (at most 256), `cluster`; an action name the "
     "model never saw is allowed (fleets name their own actions, issue 15): recommendations fall back with "
     "the reason", "test_node_events_are_bounded"),
    ("10,000 node events in one bulk import", "over 60 s (schemathesis: a timeout)",
     "bulk lookups and one insert (issue 15); more than 10,000 is a 422 naming `events`",
     "test_node_events_are_bounded"),
    ("unknown body fields (`series_id` in POST /v1/models/train) and unknown query parameters",
     "ignored: trained on every series; filters silently dropped",
     "422 `body.series_id: unknown field` / `query.serie: unknown query parameter; this operation takes …`",
     "test_unknown_fields_and_query_parameters_are_named"),
    ("POST /v1/replays with `trace_name` `.` or `..`; `step_seconds` 0, -1, `true`, `\"10\"`",
     "500; 202 then a failed run", "422 naming `trace_name` / `config.step_seconds`",
     "test_replay_requests_are_checked_before_they_are_queued"),
    ("scaling recommendation for a workload whose stored `slo.sla_penalty` is `\"abc\"`", "500",
     "422 `slo.sla_penalty: must be a finite number`", "test_a_stored_invalid_slo_is_a_clear_422"),
    ("an outcome posted on a decision never applied", "201, stored", "409 `… is proposed, not applied`",
     "test_outcomes_only_on_applied_decisions"),
    ("GET /v1/recommendations/oversubscription", "wrote a decision row",
     "answers (id 0) and writes nothing; POST records it", "test_a_get_writes_nothing"),
    ("horizon beyond the model's reach; `step=1e30d`", "named a forecaster class and a wrong bound; "
     "\"ids and offsets must fit in 64 bits\"", "422 `horizon=N is beyond the K steps model … forecasts` "
     "(with the POST that trains further); `step='1e30d' is not a positive duration … (no exponent)`",
     "test_errors_match_the_api_and_do_not_name_internals"),
    ("rotating made-up bearer tokens; a flood of them", "a fresh bucket per token; real keys' buckets "
     "evicted", "401s charged to the sender's address: 429 after its burst; verified keys keep their own "
     "buckets", "test_rate_limits_are_keyed_by_the_verified_key"),
    ("a copied dashboard session cookie after logout", "still valid until expiry",
     "refused: logout revokes the key's sessions on the server",
     "test_logout_revokes_the_session_on_the_server"),
    ("`foresight backfill` against a source answering 429 / 503", "fixed backoff, Retry-After ignored",
     "waits Retry-After (+ jitter), else exponential backoff with full jitter",
     "test_backfill_honours_retry_after_and_jitters"),
)  # fmt: skip


def hostile_section() -> list[str]:
    lines = [
        "## Hostile input (issue 18)", "",
        "Each class probed as a hostile client would, through real HTTP on one kept-alive connection "
        "(`tests/reliability/test_hostile.py`, SQLite and Postgres): every probe now gets a 4xx JSON answer "
        "naming the field, with a request id and the security headers; the database is unchanged (every "
        "table compared); the next request on the same connection is answered.", "",
        "| class tried | before | now | test |", "|---|---|---|---|",
    ]  # fmt: skip
    lines += [f"| {what} | {before} | {now} | `{test}` |" for what, before, now, test in HOSTILE_CLASSES]
    lines += [
        "", "Schemathesis's own runner covers every operation in every phase (examples, coverage, fuzzing, "
        "stateful) with no 5xx, no timeout and every answer conforming to the schema: "
        "`tests/reliability/test_schemathesis.py`, part of `scripts/test.sh` (`make test`). Measured "
        "2026-12-03 on SQLite, seed 18, 3 examples per operation and mode (`pytest -s "
        "tests/reliability/test_schemathesis.py -k sqlite`): 55/55 operations, all four phases passed, "
        "3,380 cases, 0 failures, 0 errors (no timeouts at 60 s per request), in 132 s.", "",
    ]  # fmt: skip
    return lines


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
    lines += hostile_section()
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
