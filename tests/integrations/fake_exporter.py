"""A small exporter process for the end-to-end loop test: cAdvisor-, kube-state-metrics- and DCGM-shaped
metrics of one Deployment and one GPU node, in the Prometheus text format.

The replicas it reports are read from the test's Kubernetes API server on every scrape, so what the
loop actuates shows up in the telemetry Prometheus remote-writes back: one cAdvisor series per running
pod, and the request load (an OpenTelemetry-shaped gauge with `k8s_deployment_name`) split across them.

    python -m tests.integrations.fake_exporter --port 9400 --kube http://127.0.0.1:8081
"""

from __future__ import annotations

import argparse
import json
import math
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMESPACE, DEPLOYMENT, NODE = "shop", "web", "gpu-1"
CORES_PER_REQUEST = 0.01
START = time.time()


def replicas(kube: str) -> int:
    url = f"{kube}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{DEPLOYMENT}/scale"
    with urllib.request.urlopen(url, timeout=2) as answer:
        return int(json.load(answer)["spec"]["replicas"])


def load(now: float) -> float:
    """Requests per second: a level, a daily-like wave compressed into a minute, a slow rise."""
    elapsed = now - START
    return 120.0 + 40.0 * math.sin(2 * math.pi * elapsed / 60.0) + 0.5 * elapsed


def exposition(kube: str) -> str:
    now = time.time()
    running = replicas(kube)
    rps = load(now)
    elapsed = now - START
    lines = [
        "# TYPE requests_per_second gauge",
        f'requests_per_second{{k8s_deployment_name="{DEPLOYMENT}",k8s_namespace_name="{NAMESPACE}"}} '
        f"{rps:.3f}",
        "# TYPE kube_deployment_status_replicas gauge",
        f'kube_deployment_status_replicas{{namespace="{NAMESPACE}",deployment="{DEPLOYMENT}"}} {running}',
        "# TYPE kube_deployment_spec_replicas gauge",
        f'kube_deployment_spec_replicas{{namespace="{NAMESPACE}",deployment="{DEPLOYMENT}"}} {running}',
        "# TYPE container_cpu_usage_seconds_total counter",
    ]
    pods = [f"{DEPLOYMENT}-5d8f7c6b9d-{chr(97 + i % 26)}{i % 100:02d}qz" for i in range(running)]
    for pod in pods:  # every pod has used its share of the (average) load since the start
        used = CORES_PER_REQUEST * 130.0 / running * elapsed
        labels = f'namespace="{NAMESPACE}",pod="{pod}",container="app"'
        lines.append(f"container_cpu_usage_seconds_total{{{labels}}} {used:.6f}")
    lines.append("# TYPE container_memory_working_set_bytes gauge")
    for pod in pods:
        labels = f'namespace="{NAMESPACE}",pod="{pod}",container="app"'
        lines.append(
            f"container_memory_working_set_bytes{{{labels}}} {2.5e8 + 1e6 * (sum(map(ord, pod)) % 7):.0f}"
        )
    lines.append("# TYPE DCGM_FI_DEV_POWER_USAGE gauge")
    for gpu in range(8):
        watts = 300.0 + 20.0 * math.sin(elapsed / 7.0 + gpu)
        lines.append(f'DCGM_FI_DEV_POWER_USAGE{{Hostname="{NODE}",gpu="{gpu}",UUID="GPU-{gpu}"}} {watts:.2f}')
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kube", required=True)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            return

        def do_GET(self) -> None:
            body = exposition(args.kube).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
