"""Remote-write benchmark: samples/s through Prometheus remote-write (`/api/v1/write`, protobuf + snappy)
against the JSON path (`/v1/telemetry`) and a raw binary COPY of the same rows, in the same run.

A real `foresight serve` on a scratch Postgres database; the same samples (NAB-shaped series, like
bench/ingest.py) in the same batch layout go through each path from concurrent clients, the samples table
emptied and CHECKPOINTed before each phase (series already known: the steady state). Bodies are encoded
before the clock starts. Batches default to Prometheus's shape: many series, few samples each.

    .venv/bin/python bench/remote_write.py [--samples 1000000] [--series 2000] [--batch-series 500]
        [--batch-samples 4] [--clients 4] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import psycopg
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _server import scratch_server  # noqa: E402
from ingest import trace_shapes  # noqa: E402

from service.integrations import protos, remote_write  # noqa: E402
from service.telemetry.pgcopy import encode_samples  # noqa: E402

console = Console()


def make_data(n_series: int, per_series: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = trace_shapes()
    end = int(time.time()) - 86_400
    ts = end - 10 * np.arange(per_series)[::-1]
    values = np.empty((n_series, per_series))
    for index in range(n_series):
        shape = shapes[index % len(shapes)]
        base = np.resize(np.roll(shape, int(rng.integers(0, len(shape)))), per_series) * rng.uniform(50, 500)
        values[index] = np.round(np.abs(base * rng.normal(1.0, 0.05, per_series)), 3)
    return ts, values


def windows(
    n_series: int, per_series: int, batch_series: int, batch_samples: int
) -> list[tuple[slice, slice]]:
    return [
        (
            slice(first, min(first + batch_series, n_series)),
            slice(start, min(start + batch_samples, per_series)),
        )
        for start in range(0, per_series, batch_samples)
        for first in range(0, n_series, batch_series)
    ]


def json_bodies(ts: np.ndarray, values: np.ndarray, layout: list[tuple[slice, slice]]) -> list[bytes]:
    bodies = []
    for rows, cols in layout:
        items = [
            {
                "entity": {"kind": "node", "id": f"node-{i:05d}", "cluster": "bench"},
                "metric": "cpu_json",
                "unit": "%",
                "labels": {"job": "node"},
                "samples": np.column_stack([ts[cols], values[i, cols]]).tolist(),
            }
            for i in range(rows.start, rows.stop)
        ]
        bodies.append(orjson.dumps({"series": items}))
    return bodies


def remote_write_bodies(ts: np.ndarray, values: np.ndarray, layout: list[tuple[slice, slice]]) -> list[bytes]:
    bodies = []
    stamps = (ts * 1000).tolist()
    for rows, cols in layout:
        request = protos.WriteRequest()
        for i in range(rows.start, rows.stop):
            item = request.timeseries.add()
            for name, value in (
                ("__name__", "cpu_remote_write_percent"),
                ("cluster", "bench"),
                ("instance", f"node-{i:05d}:9100"),
                ("job", "node"),
            ):
                item.labels.add(name=name, value=value)
            for stamp, value in zip(stamps[cols], values[i, cols].tolist(), strict=True):
                item.samples.add(timestamp=stamp, value=value)
        bodies.append(remote_write.encode(request))
    return bodies


def send_all(
    url: str, path: str, headers: dict[str, str], bodies: list[bytes], clients: int
) -> tuple[float, int]:
    """Send every body once from `clients` threads; returns (seconds, samples accepted)."""
    queue = list(bodies)
    lock = threading.Lock()
    accepted = [0]
    failures: list[str] = []

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=300) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                answer = http.post(path, content=body, headers=headers)
                with lock:
                    if answer.status_code == 200:
                        accepted[0] += answer.json()["accepted"]
                    else:
                        failures.append(f"{answer.status_code} {answer.text[:200]}")

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]}")
    return time.perf_counter() - started, accepted[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--batch-series", type=int, default=500, help="series per request")
    parser.add_argument("--batch-samples", type=int, default=4, help="samples per series per request")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--repeats", type=int, default=3, help="runs per path (median)")
    parser.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    per_series = -(-args.samples // args.series)
    ts, values = make_data(args.series, per_series, args.seed)
    total = values.size
    layout = windows(args.series, per_series, args.batch_series, args.batch_samples)
    with console.status("encoding bodies"):
        bodies = {
            "json": json_bodies(ts, values, layout),
            "remote_write": remote_write_bodies(ts, values, layout),
        }
    sizes = {name: sum(map(len, items)) / 1e6 for name, items in bodies.items()}
    console.print(
        f"{total:,} samples, {args.series:,} series, {len(layout)} requests of "
        f"{args.batch_series} x {args.batch_samples}; JSON {sizes['json']:.0f} MB, "
        f"remote-write {sizes['remote_write']:.0f} MB"
    )

    runs: dict[str, list[float]] = {"remote_write": [], "json": [], "copy": []}
    extra = {"FORESIGHT_JOBS_ENABLED": "false", "FORESIGHT_RATE_LIMIT_ENABLED": "false"}
    with scratch_server(["ingest"], pg=args.pg, workers=args.workers, env=extra) as server:
        url, dsn, key = server.url, server.dsn, server.keys["ingest"]
        assert dsn is not None
        auth = {"Authorization": f"Bearer {key}"}
        paths = {
            "remote_write": (
                "/api/v1/write",
                auth | {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"},
            ),
            "json": ("/v1/telemetry", auth | {"Content-Type": "application/json"}),
        }
        for _round in range(args.repeats + 1):  # the first round creates the series and is not counted
            for path_name, (path, headers) in paths.items():
                with psycopg.connect(dsn, autocommit=True) as connection:
                    connection.execute("TRUNCATE samples")
                    connection.execute("CHECKPOINT")
                seconds, accepted = send_all(url, path, headers, bodies[path_name], args.clients)
                console.print(
                    f"{path_name}: {total / seconds:,.0f} samples/s" + ("" if _round else " (warm-up)")
                )
                if accepted != total:
                    raise SystemExit(f"{path_name}: {accepted} of {total} samples accepted")
                if _round:
                    runs[path_name].append(seconds)
        with psycopg.connect(dsn, autocommit=True) as connection:
            ids = dict(
                connection.execute("SELECT entity_name, id FROM series WHERE metric = 'cpu_json'").fetchall()
            )
            series_ids = np.array([ids[f"node-{i:05d}"] for i in range(args.series)], dtype=np.int64)
            payload = encode_samples(
                np.repeat(series_ids, per_series), np.tile(ts * 1_000_000, args.series), values.reshape(-1)
            )
            for attempt in range(args.repeats):
                table = f"copy_reference_{attempt}"
                connection.execute(f"CREATE TABLE {table} (LIKE samples INCLUDING ALL)")
                connection.execute("CHECKPOINT")
                started = time.perf_counter()
                with (
                    connection.transaction(),
                    connection.cursor() as cursor,
                    cursor.copy(f"COPY {table} (series_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy,
                ):
                    copy.write(payload)
                runs["copy"].append(time.perf_counter() - started)
                connection.execute(f"DROP TABLE {table}")

    table = Table(
        title=f"{total:,} samples, {args.clients} clients, {args.workers} server workers "
        f"(median of {args.repeats})"
    )
    for column in ("path", "seconds", "samples/s", "vs COPY"):
        table.add_column(column, justify="right")
    copy_rate = total / float(np.median(runs["copy"]))
    labels = {
        "remote_write": "remote-write (protobuf+snappy)",
        "json": "JSON /v1/telemetry",
        "copy": "raw COPY",
    }
    for path_name, seconds in runs.items():
        rate = total / float(np.median(seconds))
        table.add_row(
            labels[path_name], f"{np.median(seconds):.2f}", f"{rate:,.0f}", f"{rate / copy_rate:.2f}"
        )
    console.print(table)


if __name__ == "__main__":
    main()
