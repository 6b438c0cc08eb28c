"""Faults: Postgres stopped and restarted again and again under a multi-client ingest run, with figures.

The scenario of tests/reliability/test_faults.py, repeated: a private Postgres cluster (initdb/pg_ctl on
its own port; never the shared one), one `foresight serve`, `--clients` threads sending numbered batches
and retrying refusals (503 + Retry-After or a dropped connection). Every `--between` accepted batches the
cluster is stopped (alternating `fast` and `immediate`, i.e. a crash), held down for `--down-seconds`, and
started again. Prints and writes to bench/results/faults.json: batches accepted first time, refused and
retried, samples stored, lost (must be 0), answers by status, and the recovery time after each restart
(from `pg_ctl start` returning to the next accepted batch), all without restarting the service.
`--job-tests` also runs tests/reliability/test_jobs_multi.py (two replicas; SIGKILL mid-job) and records it.

    .venv/bin/python bench/faults.py [--rounds 6] [--clients 8] [--between 60] [--down-seconds 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.reliability.ingest_driver import IngestRun, Shape, migrate_and_key, verify, write_env  # noqa: E402
from tests.reliability.pgcluster import PgCluster  # noqa: E402
from tests.test_startup import _serve, _stop  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "faults.json"
console = Console()


def outage(
    cluster: PgCluster, run: IngestRun, mode: str, down_seconds: float, clients: int
) -> dict[str, Any]:
    refusals = run.refusals
    stopped = time.monotonic()
    cluster.stop(mode)
    run.until_refused(refusals + clients, 30)
    time.sleep(max(0.0, down_seconds - (time.monotonic() - stopped)))
    cluster.start()
    mark = run.mark()
    recovered = run.until_accepted_after(mark, 120)
    return {
        "mode": mode,
        "down_seconds": round(mark - stopped, 2),
        "refusals_during": run.refusals - refusals,
        "recovered": recovered,
        "recovery_seconds": round(run.first_200_after[mark] - mark, 3) if recovered else None,
    }


def job_tests() -> dict[str, Any]:
    """Run the two-replica / SIGKILL-mid-job tests and keep their verdict."""
    started = time.monotonic()
    tests = "tests/reliability/test_jobs_multi.py"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", tests, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"}, check=False,
    )  # fmt: skip
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return {"passed": done.returncode == 0, "summary": last, "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=6, help="outages (alternating fast / immediate)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--between", type=int, default=60, help="accepted batches before each outage")
    parser.add_argument("--down-seconds", type=float, default=2.0, help="least time the database is down")
    parser.add_argument("--job-tests", action="store_true", help="also run test_jobs_multi.py")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    per_client = math.ceil(args.between * (args.rounds + 1) / args.clients) + 5
    shape = Shape(clients=args.clients, batches=per_client, give_up_seconds=180)
    outages: list[dict[str, Any]] = []
    with PgCluster() as cluster, tempfile.TemporaryDirectory(prefix="foresight-faults-") as workdir:
        name = f"faults_{uuid.uuid4().hex[:8]}"
        url = cluster.create_database(name)
        key = migrate_and_key(url, "ingest")
        write_env(Path(workdir), url)
        process, base = _serve(Path(workdir))
        pid = process.pid
        run = IngestRun(base, key, shape)
        try:
            run.start()
            for index in range(args.rounds):
                if not run.until_accepted(run.accepted_batches + args.between, 180):
                    break
                mode = ("fast", "immediate")[index % 2]
                outages.append(outage(cluster, run, mode, args.down_seconds, args.clients))
                console.print(f"outage {index + 1} ({mode}): {outages[-1]}", highlight=False)
            finished = run.join(600)
            summary = run.summary()
            with cluster.connect(name) as connection:
                stored = verify(connection, shape, run)
            alive = process.poll() is None and process.pid == pid
            ready = httpx.get(base + "/readyz", timeout=10).status_code == 200
        finally:
            run.join(5)
            _stop(process)
    recoveries = [o["recovery_seconds"] for o in outages if o["recovery_seconds"] is not None]
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["bench/faults.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()[0]},
        "config": {"clients": args.clients, "batches_per_client": per_client,
                   "samples_per_batch": shape.series * shape.samples, "down_seconds": args.down_seconds},
        "outages": outages,
        "faults_survived": sum(1 for o in outages if o["recovered"]),
        "clients_finished": finished, "service_same_process": alive, "ready_after": ready,
        "recovery_seconds_max": max(recoveries, default=None),
        "recovery_seconds_median": sorted(recoveries)[len(recoveries) // 2] if recoveries else None,
        "ingest": summary,
        "stored": stored,
        "lost": stored["samples_lost"],
        "job_tests": job_tests() if args.job_tests else None,
    }  # fmt: skip
    console.print(json.dumps({k: v for k, v in result.items() if k != "outages"}, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.output}")
    failed = (stored["samples_lost"] or stored["stored_more_than_once"] or summary["answers_500"]
              or summary["never_accepted"] or not (alive and ready and finished))  # fmt: skip
    if failed or (result["job_tests"] and not result["job_tests"]["passed"]):
        sys.exit("faults not survived: see the figures above")


if __name__ == "__main__":
    main()
