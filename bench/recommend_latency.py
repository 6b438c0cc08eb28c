"""Latency of `POST /v1/recommendations/scaling` under concurrent load, against a trivial endpoint of the
same app (`GET /healthz`) measured in the same run, with the forecaster warm.

Set-up: a scratch Postgres database (or `--sqlite`), `foresight serve` on 127.0.0.1, a few workloads with
three days of 5-minute load each, the default forecaster trained on them, one warm-up call per workload.
Then, for each concurrency level, N requests to the trivial endpoint and N scaling recommendations (round
robin over the workloads) are sent by a bounded pool of clients; it prints p50 / p99 / req/s for both and
the p99 ratio (goal: ≤ 3x).

    .venv/bin/python bench/recommend_latency.py [--requests 300] [--concurrency 1,4,8] [--sqlite]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from _server import scratch_server
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
console = Console()
T0 = int(time.time()) - 3 * 86400


def timed_calls(
    url: str, calls: list[tuple[str, str, dict | None]], headers: dict[str, str], clients: int
) -> tuple[np.ndarray, float, int]:
    """Latency (s) of every call, total seconds, failures."""

    def one(call: tuple[str, str, dict | None], http: httpx.Client) -> tuple[float, bool]:
        method, path, body = call
        started = time.perf_counter()
        answer = http.request(method, path, json=body, headers=headers)
        return time.perf_counter() - started, answer.status_code < 400

    with httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(lambda c: one(c, http), calls))
        total = time.perf_counter() - started
    latencies = np.array([r[0] for r in results])
    return latencies, total, sum(1 for r in results if not r[1])


def seed(url: str, admin: dict[str, str], workloads: int) -> None:
    rng = np.random.default_rng(7)
    t = T0 + 300 * np.arange(3 * 288)
    items = []
    for i in range(workloads):
        values = 100 + 40 * np.sin(2 * np.pi * t / 86400 + i) + rng.normal(0, 4, len(t))
        items.append(
            {
                "entity": {"kind": "workload", "id": f"web-{i}", "cluster": "bench"},
                "metric": "requests_per_second",
                "unit": "req/s",
                "samples": [[int(a), round(float(b), 3)] for a, b in zip(t, values, strict=True)],
            }
        )
    answer = httpx.post(url + "/v1/telemetry", json={"series": items}, headers=admin, timeout=120)
    answer.raise_for_status()
    for i in range(workloads):
        body = {
            "cluster": "bench",
            "replicas": 10,
            "replica_capacity": 10.0,
            "capacity_metric": "requests_per_second",
            "max_replicas": 100,
            "mode": "shadow",
        }
        httpx.put(url + f"/v1/workloads/web-{i}", json=body, headers=admin, timeout=30).raise_for_status()
    trained = httpx.post(
        url + "/v1/models/train",
        json={"entity_kind": "workload", "horizon": 6, "backtest": False},
        headers=admin,
        timeout=600,
    )
    trained.raise_for_status()
    httpx.post(url + "/v1/loop/run", headers=admin, timeout=600).raise_for_status()  # the loop decides
    for i in range(workloads):  # warm: model loaded into the cache, first forecast made
        httpx.post(
            url + "/v1/recommendations/scaling", json={"workload": f"web-{i}"}, headers=admin, timeout=120
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300, help="requests per endpoint and level")
    parser.add_argument("--concurrency", default="1,4,8")
    parser.add_argument("--workloads", type=int, default=8)
    parser.add_argument("--sqlite", action="store_true", help="use a scratch SQLite file instead of Postgres")
    parser.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    args = parser.parse_args()
    extra = {"FORESIGHT_JOBS_ENABLED": "true", "FORESIGHT_LOOP_TICK_SECONDS": "5", "OMP_NUM_THREADS": "1"}
    with scratch_server(["admin"], pg=None if args.sqlite else args.pg, env=extra) as server:
        url, admin = server.url, server.bearer("admin")
        with console.status("seeding workloads and training the default forecaster"):
            seed(url, admin, args.workloads)
        table = Table(title="Scaling recommendation vs trivial endpoint (same app, same run)")
        for column in ("clients", "endpoint", "p50 ms", "p99 ms", "req/s", "errors", "p99 ratio"):
            table.add_column(column, justify="right")
        for clients in [int(c) for c in args.concurrency.split(",")]:
            trivial = [("GET", "/healthz", None)] * args.requests
            scaling = [
                ("POST", "/v1/recommendations/scaling", {"workload": f"web-{i % args.workloads}"})
                for i in range(args.requests)
            ]
            results = {}
            for label, calls in (("GET /healthz", trivial), ("POST scaling", scaling)):
                with console.status(f"{clients} clients: {label}"):
                    results[label] = timed_calls(url, calls, admin, clients)
            base_p99 = float(np.percentile(results["GET /healthz"][0], 99))
            for label, (lat, total, errors) in results.items():
                p99 = float(np.percentile(lat, 99))
                table.add_row(
                    str(clients),
                    label,
                    f"{np.percentile(lat, 50) * 1e3:.1f}",
                    f"{p99 * 1e3:.1f}",
                    f"{len(lat) / total:.0f}",
                    str(errors),
                    f"{p99 / base_p99:.1f}x",
                )
        console.print(table)


if __name__ == "__main__":
    main()
