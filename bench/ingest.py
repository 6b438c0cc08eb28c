"""Ingest benchmark: HTTP API into Postgres vs raw COPY of the same rows, in the same run.

Builds >= 2 million samples with real trace shapes (the NAB CloudWatch series, rescaled, phase-shifted and
with noise) over thousands of series, sends them through `POST /v1/telemetry` from several concurrent
clients to a real `foresight serve`, then COPYs the identical rows (binary COPY, pre-encoded) into a
scratch table with the same primary key. Prints samples/s for both, their ratio (goal >= 0.5), and where
the server's time went (ingest phase histograms from /metrics).

    .venv/bin/python bench/ingest.py [--samples 2000000] [--series 4000] [--clients 4] [--workers 2]
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
import pandas as pd
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from _server import scratch_server  # noqa: E402

from service.telemetry.pgcopy import encode_samples  # noqa: E402

NAB = ROOT / "service" / "sample_data" / "nab"
console = Console()


def trace_shapes() -> list[np.ndarray]:
    """The bundled NAB series, each scaled to mean 1."""
    shapes = []
    for path in sorted(NAB.glob("*.csv")):
        values = pd.read_csv(path)["value"].to_numpy(dtype=np.float64)
        shapes.append(values / max(values.mean(), 1e-9))
    return shapes


def make_batches(
    n_series: int, per_series: int, series_per_batch: int, samples_per_round: int, seed: int
) -> tuple[list[bytes], dict[str, np.ndarray]]:
    """Pre-encoded JSON batches, streamed as a collector would: each round sends the next
    `samples_per_round` samples of every series, so series recur (the steady state), plus the rows."""
    rng = np.random.default_rng(seed)
    shapes = trace_shapes()
    end = int(time.time()) - 86_400
    ts = end - 10 * np.arange(per_series)[::-1]
    values = np.empty((n_series, per_series))
    for index in range(n_series):
        shape = shapes[index % len(shapes)]
        base = np.resize(np.roll(shape, int(rng.integers(0, len(shape)))), per_series) * rng.uniform(50, 500)
        values[index] = np.round(np.abs(base * rng.normal(1.0, 0.05, per_series)), 3)
    bodies = []
    for start in range(0, per_series, samples_per_round):
        window = slice(start, min(start + samples_per_round, per_series))
        for first in range(0, n_series, series_per_batch):
            items = [
                {
                    "entity": {"kind": "node", "id": f"node-{index:05d}", "cluster": f"bench-{index % 8}"},
                    "metric": "cpu_utilization", "unit": "%",
                    "samples": np.column_stack([ts[window], values[index, window]]).tolist(),
                }
                for index in range(first, min(first + series_per_batch, n_series))
            ]  # fmt: skip
            bodies.append(orjson.dumps({"series": items}))
    rows = {
        "name": np.repeat(np.arange(n_series), per_series),
        "ts": np.tile(ts, n_series),
        "value": values.reshape(-1),
    }
    return bodies, rows


def send_all(url: str, key: str, bodies: list[bytes], clients: int) -> tuple[float, int, int]:
    """Send every body once from `clients` threads; returns (seconds, accepted, failures)."""
    queue = list(enumerate(bodies))
    lock = threading.Lock()
    totals = {"accepted": 0, "failed": 0}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("HTTP ingest", total=len(bodies))

        def worker() -> None:
            with httpx.Client(base_url=url, timeout=300) as http:
                while True:
                    with lock:
                        if not queue:
                            return
                        _, body = queue.pop(0)
                    for _attempt in range(5):
                        answer = http.post("/v1/telemetry", content=body, headers=headers)
                        if answer.status_code == 200:
                            break
                        time.sleep(float(answer.headers.get("retry-after", "1")))
                    with lock:
                        if answer.status_code == 200:
                            totals["accepted"] += answer.json()["accepted"]
                        else:
                            totals["failed"] += 1
                    progress.advance(task)

        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return time.perf_counter() - started, totals["accepted"], totals["failed"]


def phase_profile(url: str) -> list[tuple[str, float, int]]:
    phases = []
    for family in text_string_to_metric_families(httpx.get(url + "/metrics").text):
        if family.name == "foresight_ingest_phase_seconds":
            sums = {s.labels["phase"]: s.value for s in family.samples if s.name.endswith("_sum")}
            counts = {s.labels["phase"]: s.value for s in family.samples if s.name.endswith("_count")}
            phases = [(phase, sums[phase], int(counts[phase])) for phase in sums]
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=2_000_000)
    parser.add_argument("--series", type=int, default=4000)
    parser.add_argument("--series-per-batch", type=int, default=100)
    parser.add_argument("--samples-per-round", type=int, default=100, help="samples per series per batch")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--pg", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--api-repeats", type=int, default=3, help="HTTP ingest passes (median)")
    parser.add_argument("--copy-repeats", type=int, default=3, help="reference COPY runs (median)")
    parser.add_argument("--resend-fraction", type=float, default=0.1, help="batches sent again (retries)")
    args = parser.parse_args()

    per_series = -(-args.samples // args.series)
    with console.status("building batches"):
        bodies, rows = make_batches(
            args.series, per_series, args.series_per_batch, args.samples_per_round, args.seed
        )
    total = len(rows["value"])
    size = args.series_per_batch * args.samples_per_round
    console.print(
        f"{total:,} samples in {args.series:,} series, {len(bodies)} batches of {size:,} samples "
        f"({sum(map(len, bodies)) / 1e6:.0f} MB JSON)"
    )

    with scratch_server(["ingest"], pg=args.pg, workers=args.workers) as server:
        url, dsn, key = server.url, server.dsn, server.keys["ingest"]
        assert dsn is not None
        api_runs = []
        for attempt in range(args.api_repeats):
            with psycopg.connect(dsn, autocommit=True) as connection:
                if attempt:  # later passes: series known (the steady state), samples table empty again
                    connection.execute("TRUNCATE samples")
                connection.execute("CHECKPOINT")
            seconds, accepted, failed = send_all(url, key, bodies, args.clients)
            api_runs.append(seconds)
            if failed or accepted != total:
                break
        api_seconds = float(np.median(api_runs))
        phases = phase_profile(url) if args.workers == 1 else []
        resent = bodies[: int(len(bodies) * args.resend_fraction)]
        resend_seconds, resend_accepted, resend_failed = send_all(url, key, resent, args.clients)
        failed += resend_failed
        resent_samples = len(resent) * args.series_per_batch * args.samples_per_round

        with psycopg.connect(dsn, autocommit=True) as connection:
            stored = connection.execute("SELECT count(*) FROM samples").fetchone()[0]
            ids = dict(connection.execute("SELECT entity_name, id FROM series").fetchall())
            series_ids = np.array([ids[f"node-{i:05d}"] for i in range(args.series)], dtype=np.int64)
            payload = encode_samples(series_ids[rows["name"]], (rows["ts"] * 1_000_000).astype(np.int64),
                                     rows["value"])  # fmt: skip
            copy_runs = []
            for attempt in range(args.copy_repeats):
                table_name = f"copy_reference_{attempt}"
                connection.execute(f"CREATE TABLE {table_name} (LIKE samples INCLUDING ALL)")
                connection.execute("CHECKPOINT")  # start from clean buffers, as the API run did
                started = time.perf_counter()
                with connection.transaction(), connection.cursor() as cursor:
                    statement = f"COPY {table_name} (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
                    with cursor.copy(statement) as copy:
                        copy.write(payload)
                copy_runs.append(time.perf_counter() - started)
                connection.execute(f"DROP TABLE {table_name}")
            copy_seconds = float(np.median(copy_runs))

    api_rate, copy_rate = total / api_seconds, total / copy_seconds
    table = Table(title=f"ingest of {total:,} samples, {args.clients} clients, {args.workers} server workers")
    for column in ("path", "seconds", "samples/s"):
        table.add_column(column, justify="right")
    api_spread = f"{min(api_runs):.1f}-{max(api_runs):.1f}"
    table.add_row(
        f"HTTP API, new samples (median of {len(api_runs)}: {api_spread} s)",
        f"{api_seconds:.1f}",
        f"{api_rate:,.0f}",
    )
    if resent:
        rate = resent_samples / resend_seconds
        table.add_row("HTTP API: resent batches (all duplicates)", f"{resend_seconds:.1f}", f"{rate:,.0f}")
    spread = f"{min(copy_runs):.1f}-{max(copy_runs):.1f}"
    table.add_row(
        f"raw binary COPY, same key (median of {len(copy_runs)}: {spread} s)", f"{copy_seconds:.1f}",
        f"{copy_rate:,.0f}",
    )  # fmt: skip
    console.print(table)
    console.print(f"ratio API / COPY = [bold]{api_rate / copy_rate:.2f}[/bold] (goal ≥ 0.5)")
    console.print(
        f"accepted {accepted:,}, stored {stored:,}, failed batches {failed}, lost {total - stored:,}, "
        f"stored twice {resend_accepted:,} (of {len(resent)} resent batches)"
    )
    if phases:
        busy = sum(seconds for _, seconds, _ in phases)
        profile = Table(title="server time per ingest phase (sum over batches)")
        for column in ("phase", "seconds", "share"):
            profile.add_column(column, justify="right")
        for phase, seconds, _ in sorted(phases, key=lambda p: -p[1]):
            profile.add_row(phase, f"{seconds:.1f}", f"{seconds / busy:.0%}")
        console.print(profile)
    if stored != total or failed or resend_accepted:
        sys.exit("data lost or batches failed")


if __name__ == "__main__":
    main()
