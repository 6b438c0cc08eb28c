"""Load: mixed traffic at rising rates against a real `foresight serve` on a scratch Postgres database.

Set-up as bench/recommend_latency.py (whose `seed` it reuses): workloads with three days of load, the
default forecaster trained on them. Then, per level, an open-loop client (asyncio + httpx, at most
`--max-in-flight` requests outstanding; arrivals beyond that wait in the client, so latency counts from
the scheduled arrival) sends ingest batches of new samples, series listings, sample queries and scaling
recommendations. It prints throughput, p50/p99 and error rate per level. A graceful answer to overload
is queuing or 429/503 with Retry-After; a 500 or an answer without Retry-After is a failure. At the end
every ingest batch answered 200 must be stored exactly once and refused ones not at all (rows counted).
`--soak-minutes N` then holds a steady rate and samples the server's RSS to show whether memory is flat.

    .venv/bin/python bench/load.py [--levels 10,25,50,100,200] [--level-seconds 15] [--soak-minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import scratch_server
from recommend_latency import seed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "load.json"
console = Console()
MIX = (("ingest", 0.4), ("list_series", 0.2), ("samples", 0.2), ("scaling", 0.2))
LOAD_SERIES, SERIES_PER_BATCH, SAMPLES_PER_SERIES = 20, 4, 50
BASE_TS = int(time.time()) - 365 * 86400  # 500 s of samples per batch: room for ~60,000 batches


@dataclass
class Level:
    """What one level (or the soak) saw, per request kind."""

    rate: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind, _ in MIX})
    statuses: dict[str, int] = field(default_factory=dict)
    shed_without_retry_after: int = 0
    seconds: float = 0.0

    def count(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def summary(self) -> dict[str, Any]:
        every = [x for values in self.latencies.values() for x in values]
        total = sum(n for s, n in self.statuses.items() if not s.startswith("transport:"))  # detail keys
        ok = sum(n for s, n in self.statuses.items() if s.startswith("2"))
        shed = self.statuses.get("429", 0) + self.statuses.get("503", 0)
        server_errors = sum(n for s, n in self.statuses.items() if s.startswith("5") and s != "503")
        return {
            "offered_rps": self.rate, "requests": total, "seconds": round(self.seconds, 2),
            "throughput_rps": round(total / self.seconds, 1) if self.seconds else 0.0,
            "ok_rps": round(ok / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": _percentile(every, 50), "p99_ms": _percentile(every, 99),
            "per_kind": {kind: {"n": len(v), "p50_ms": _percentile(v, 50), "p99_ms": _percentile(v, 99)}
                         for kind, v in self.latencies.items()},
            "error_rate": round((total - ok) / total, 4) if total else 0.0,
            "shed_429_503": shed, "server_errors_5xx": server_errors,
            "transport_errors": self.statuses.get("transport", 0),
            "other_4xx": sum(n for s, n in self.statuses.items() if s.startswith("4") and s != "429"),
            "shed_without_retry_after": self.shed_without_retry_after, "statuses": dict(self.statuses),
        }  # fmt: skip


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1e3, 1) if values else None


class Ledger:
    """Every ingest batch sent, by id, with what the server answered (the end-of-run row count)."""

    def __init__(self) -> None:
        self.next_id = 0
        self.accepted: dict[int, int] = {}  # batch -> samples the 200 answer reported as accepted
        self.refused: set[int] = set()
        self.in_doubt: set[int] = set()  # transport error: outcome unknown, resent at the end

    def new_batch(self) -> tuple[int, dict[str, Any]]:
        batch_id, self.next_id = self.next_id, self.next_id + 1
        return batch_id, batch_body(batch_id)


def batch_body(batch_id: int) -> dict[str, Any]:
    """Batch n: SERIES_PER_BATCH load series, each with samples no other batch has."""
    first = BASE_TS + batch_id * SAMPLES_PER_SERIES * 10
    return {
        "series": [
            {"entity": {"kind": "node", "id": f"load-node-{(batch_id + s) % LOAD_SERIES}", "cluster": "load"},
             "metric": f"cpu_utilization_{s}", "unit": "%",
             "samples": [[first + 10 * i, float((batch_id + i) % 100)] for i in range(SAMPLES_PER_SERIES)]}
            for s in range(SERIES_PER_BATCH)
        ]
    }  # fmt: skip


class Traffic:
    def __init__(self, http: httpx.AsyncClient, keys: dict[str, dict[str, str]], workloads: int,
                 series_ids: list[int], ledger: Ledger, max_in_flight: int) -> None:  # fmt: skip
        self.http, self.keys, self.workloads, self.series_ids = http, keys, workloads, series_ids
        self.ledger = ledger
        self.slots = asyncio.Semaphore(max_in_flight)
        self.random = random.Random(11)

    async def run(self, rate: float, seconds: float) -> Level:
        level = Level(rate)
        started = time.perf_counter()
        tasks = []
        n = int(rate * seconds)
        for i in range(n):
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            kind = self.random.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
            tasks.append(asyncio.create_task(self.one(kind, due, level)))
        await asyncio.gather(*tasks)
        level.seconds = time.perf_counter() - started
        return level

    async def one(self, kind: str, due: float, level: Level) -> None:
        batch_id = None
        async with self.slots:
            try:
                if kind == "ingest":
                    batch_id, body = self.ledger.new_batch()
                    answer = await self.http.post("/v1/telemetry", json=body, headers=self.keys["ingest"])
                elif kind == "list_series":
                    query = "/v1/series?cluster=load&limit=50"
                    answer = await self.http.get(query, headers=self.keys["read"])
                elif kind == "samples":
                    series = self.random.choice(self.series_ids)
                    path = f"/v1/series/{series}/samples"
                    answer = await self.http.get(path, params={"max_points": 500}, headers=self.keys["read"])
                else:
                    body = {"workload": f"web-{self.random.randrange(self.workloads)}"}
                    answer = await self.http.post(
                        "/v1/recommendations/scaling", json=body, headers=self.keys["operate"]
                    )
            except httpx.TransportError as error:
                level.count("transport")
                level.count(f"transport:{type(error).__name__}")
                if batch_id is not None:
                    self.ledger.in_doubt.add(batch_id)
                return
        level.latencies[kind].append(time.perf_counter() - due)
        status = str(answer.status_code)
        level.count(status)
        if answer.status_code in (429, 503) and "retry-after" not in answer.headers:
            level.shed_without_retry_after += 1
        if batch_id is not None:
            if answer.status_code == 200:
                self.ledger.accepted[batch_id] = answer.json()["accepted"]
            else:
                self.ledger.refused.add(batch_id)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (uvicorn workers), from /proc."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS"))
        stack.extend(int(child) for child in children)
    return total


async def soak(traffic: Traffic, pid: int, rate: float, minutes: float, every: float) -> dict[str, Any]:
    """Steady traffic for `minutes`, RSS sampled every `every` s; flat = the second half grows < 5%."""
    samples: list[tuple[float, int]] = []
    level_total = Level(rate)
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < minutes * 60 - 1:
        samples.append((elapsed, rss_bytes(pid)))
        chunk = await traffic.run(rate, max(1.0, min(every, minutes * 60 - elapsed)))
        for kind, values in chunk.latencies.items():
            level_total.latencies[kind].extend(values)
        for status, n in chunk.statuses.items():
            level_total.statuses[status] = level_total.statuses.get(status, 0) + n
        level_total.shed_without_retry_after += chunk.shed_without_retry_after
        console.print(f"soak {elapsed / 60:5.1f} min  RSS {samples[-1][1] / 2**20:7.1f} MB", highlight=False)
    samples.append((time.perf_counter() - started, rss_bytes(pid)))
    level_total.seconds = time.perf_counter() - started
    t = np.array([s[0] for s in samples]) / 60
    mb = np.array([s[1] for s in samples]) / 2**20
    half = t >= t[-1] / 2
    slope = float(np.polyfit(t[half], mb[half], 1)[0]) if half.sum() >= 2 else 0.0
    second_half_growth = slope * (t[-1] - t[half][0])
    result = {
        "minutes": round(float(t[-1]), 2), "rate_rps": rate, "rss_start_mb": round(float(mb[0]), 1),
        "rss_half_mb": round(float(mb[half][0]), 1), "rss_end_mb": round(float(mb[-1]), 1),
        "rss_max_mb": round(float(mb.max()), 1),
        "slope_second_half_mb_per_min": round(slope, 3),
        "end_over_half_ratio": round(float(mb[-1] / mb[half][0]), 3),
        "end_over_start_ratio": round(float(mb[-1] / mb[0]), 3),
        "flat": bool(second_half_growth < 0.05 * float(mb[half][0])),
        "traffic": level_total.summary(),
        "rss_samples_mb": [[round(float(a), 2), round(float(b), 1)] for a, b in zip(t, mb, strict=True)],
    }  # fmt: skip
    return result


async def resolve_and_count(http: httpx.AsyncClient, keys: dict[str, dict[str, str]], ledger: Ledger,
                            dsn: str) -> dict[str, Any]:  # fmt: skip
    """Resend batches whose outcome is unknown until answered 200, then count rows per batch."""
    for batch_id in sorted(ledger.in_doubt):
        for _attempt in range(30):
            answer = await http.post("/v1/telemetry", json=batch_body(batch_id), headers=keys["ingest"])
            if answer.status_code == 200:
                ledger.accepted[batch_id] = ledger.accepted.get(batch_id, 0) + answer.json()["accepted"]
                ledger.refused.discard(batch_id)
                break
            await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
    per_batch = SERIES_PER_BATCH * SAMPLES_PER_SERIES
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT floor((extract(epoch FROM x.ts) - %s) / %s)::bigint, count(*) FROM samples x"
            " JOIN series s ON s.id = x.series_id WHERE s.entity_name LIKE 'load-node-%%' GROUP BY 1",
            (BASE_TS, SAMPLES_PER_SERIES * 10),
        ).fetchall()
    stored = {int(batch): int(count) for batch, count in rows}
    accepted_ids = set(ledger.accepted)
    return {
        "batches_sent": ledger.next_id, "batches_accepted": len(accepted_ids),
        "batches_refused": len(ledger.refused - accepted_ids), "batches_in_doubt": len(ledger.in_doubt),
        "samples_accepted": per_batch * len(accepted_ids),
        "samples_stored": sum(stored.values()),
        "lost": sum(per_batch - stored.get(b, 0) for b in accepted_ids),
        "stored_twice": sum(max(0, n - per_batch) for n in stored.values()),
        "stored_from_refused_batches": sum(stored.get(b, 0) for b in ledger.refused - accepted_ids),
        "reported_accepted_mismatch": sum(1 for b, n in ledger.accepted.items() if n != per_batch),
    }  # fmt: skip


def print_levels(levels: list[dict[str, Any]]) -> None:
    table = Table(title="mixed traffic (40% ingest, 20% series list, 20% samples, 20% scaling)")
    columns = ("offered/s", "done/s", "ok/s", "p50 ms", "p99 ms", "errors", "429/503", "5xx", "transport")
    for column in columns:
        table.add_column(column, justify="right")
    for s in levels:
        table.add_row(
            f"{s['offered_rps']:g}", f"{s['throughput_rps']:.0f}", f"{s['ok_rps']:.0f}", str(s["p50_ms"]),
            str(s["p99_ms"]), f"{s['error_rate']:.1%}", str(s["shed_429_503"]), str(s["server_errors_5xx"]),
            str(s["transport_errors"]),
        )  # fmt: skip
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="10,25,50,100,200", help="offered request rates (req/s)")
    parser.add_argument("--level-seconds", type=float, default=15)
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--workloads", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--soak-minutes", type=float, default=0)
    parser.add_argument("--soak-rate", type=float, default=20)
    parser.add_argument("--rss-every", type=float, default=10, help="seconds between RSS samples")
    parser.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    asyncio.run(run(args))


async def run(args: argparse.Namespace) -> None:
    extra = {
        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),  # as the Dockerfile sets it
        "FORESIGHT_JOBS_ENABLED": "false",
        "OMP_NUM_THREADS": "1",
    }
    scopes = ("admin", "ingest", "read", "operate")
    with scratch_server(scopes, pg=args.pg, workers=args.workers, env=extra) as server:
        url, dsn = server.url, server.dsn
        assert dsn is not None
        keys = {scope: server.bearer(scope) for scope in scopes}
        with console.status("seeding workloads and training the default forecaster"):
            await asyncio.to_thread(seed, url, keys["admin"], args.workloads)
        series = httpx.get(url + "/v1/series", params={"cluster": "bench"}, headers=keys["read"]).json()
        ledger = Ledger()
        limits = httpx.Limits(
            max_connections=args.max_in_flight, max_keepalive_connections=args.max_in_flight
        )
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
            traffic = Traffic(http, keys, args.workloads, [s["id"] for s in series["items"]], ledger,
                              args.max_in_flight)  # fmt: skip
            levels = []
            for rate in [float(r) for r in args.levels.split(",") if r]:
                with console.status(f"{rate:g} req/s for {args.level_seconds:g} s"):
                    levels.append((await traffic.run(rate, args.level_seconds)).summary())
                print_levels(levels[-1:])
            soaked = None
            if args.soak_minutes:
                soaked = await soak(traffic, server.pid, args.soak_rate, args.soak_minutes, args.rss_every)
            check = await resolve_and_count(http, keys, ledger, dsn)
    print_levels(levels)
    console.print("ingest check:", check)
    if soaked:
        shown = {k: v for k, v in soaked.items() if k not in ("rss_samples_mb", "traffic")}
        console.print("soak:", shown)
    held = [s for s in levels if s["server_errors_5xx"] == 0 and s["shed_without_retry_after"] == 0]
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["bench/load.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()[0]},
        "config": {
            "level_seconds": args.level_seconds,
            "max_in_flight": args.max_in_flight,
            "workers": args.workers,
            "workloads": args.workloads,
            "mix": dict(MIX),
            "samples_per_batch": SERIES_PER_BATCH * SAMPLES_PER_SERIES,
        },
        "levels": levels,
        "levels_held": len(held),
        "max_rate_held_rps": max((s["offered_rps"] for s in held), default=None),
        "server_errors_5xx": sum(s["server_errors_5xx"] for s in levels)
        + (soaked["traffic"]["server_errors_5xx"] if soaked else 0),
        "ingest_check": check,
        "soak": soaked,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.output}")
    broken = check["lost"] + check["stored_twice"] + check["stored_from_refused_batches"]
    if broken or result["server_errors_5xx"]:
        sys.exit("data lost, stored twice, or 5xx answers")


if __name__ == "__main__":
    main()
