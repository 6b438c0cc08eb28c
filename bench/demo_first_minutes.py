"""The first minutes of `make run`, measured: start `foresight serve` on a fresh embedded SQLite (the
live demo), poll the API and print when each milestone is first reached, in seconds after the process
started:

* ready: /readyz answers 200;
* first_model: the registry holds a forecaster;
* all_series_forecast: every demo series answers GET /v1/forecasts (200);
* decision[<workload>]: the first scaling decision of each workload, and the first one made on a
  forecast (no fallback);
* power / mitigation: the first power-capping and mitigation decision; mitigation_model: the causal
  model is in the registry;
* live_accuracy: GET /v1/forecasts/accuracy scores at least one served forecast.

    nice -n 10 .venv/bin/python bench/demo_first_minutes.py [--timeout 300] [--speed 1]

Writes bench/results/demo_first_minutes.json. Goal: everything within 5 minutes, the first model < 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import contextlib

from bench._server import FORESIGHT, ROOT, free_port

WORKLOADS = ("web", "ingest", "llm-code")


def _start(workdir: Path, port: int, speed: float) -> tuple[subprocess.Popen[str], Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORESIGHT_")}
    env.update(FORESIGHT_DEMO_SPEED=str(speed), FORESIGHT_LOG_JSON="true", PYTHONPATH=str(ROOT))
    log = workdir / "server.log"
    process = subprocess.Popen(
        [*FORESIGHT, "serve", "--port", str(port)], cwd=workdir, env=env, text=True,
        stdout=subprocess.PIPE, stderr=log.open("w"),
    )  # fmt: skip
    return process, log


def _key(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("fsk_"):
            return line.strip()
        if not line and process.poll() is not None:
            break
    raise SystemExit("the server printed no admin key")


def _json(client: httpx.Client, path: str) -> Any:
    answer = client.get(path)
    return answer.json() if answer.status_code == 200 else None


def measure(timeout: float, speed: float) -> dict[str, Any]:
    marks: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="foresight-demo-bench-") as scratch:
        port = free_port()
        started = time.monotonic()
        process, log = _start(Path(scratch), port, speed)
        try:
            key = _key(process, started + timeout)
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                  headers={"Authorization": f"Bearer {key}"})  # fmt: skip

            def mark(name: str) -> None:
                if name not in marks:
                    marks[name] = round(time.monotonic() - started, 1)
                    print(f"{marks[name]:7.1f} s  {name}", flush=True)

            wanted = {"ready", "first_model", "all_series_forecast", "power", "mitigation",
                      "mitigation_model", "live_accuracy"}  # fmt: skip
            wanted |= {f"decision[{w}]" for w in WORKLOADS} | {f"forecast_decision[{w}]" for w in WORKLOADS}
            while time.monotonic() - started < timeout and not wanted <= set(marks):
                with contextlib.suppress(httpx.TransportError):
                    _poll(client, mark)
                time.sleep(2)
        finally:
            process.terminate()
            process.wait(timeout=60)
        missing = sorted(wanted - set(marks)) if "wanted" in locals() else []
        tail = log.read_text().splitlines()[-5:] if missing else []
    return {"speed": speed, "timeout_seconds": timeout, "seconds": marks, "missed": missing, "log_tail": tail}


def _poll(client: httpx.Client, mark: Any) -> None:
    if client.get("/readyz").status_code == 200:
        mark("ready")
    models = _json(client, "/v1/models") or []
    if any(m["kind"] == "forecaster" for m in models):
        mark("first_model")
    if any(m["kind"] == "policy" for m in models):
        mark("mitigation_model")
    series = (_json(client, "/v1/series?cluster=demo&limit=100") or {}).get("items", [])
    if series and all(client.get(f"/v1/forecasts?series={s['id']}&horizon=1").status_code == 200
                      for s in series):  # fmt: skip
        mark("all_series_forecast")
    for item in (_json(client, "/v1/decisions?limit=200") or {}).get("items", []):
        if item["kind"] == "scaling":
            mark(f"decision[{item['target_name']}]")
            if not item["explanation"].get("fallback_reason"):
                mark(f"forecast_decision[{item['target_name']}]")
        elif item["kind"] in ("power", "mitigation"):
            mark(item["kind"])
    scored = (_json(client, "/v1/forecasts/accuracy") or {}).get("items", [])
    if any(s["scored"] > 0 for s in scored):
        mark("live_accuracy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    result = measure(args.timeout, args.speed)
    out = ROOT / "bench" / "results" / "demo_first_minutes.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
