"""One table from the names exporters use to the names policies read, with the unit conversion.

Policies read a handful of canonical inputs: `cpu_usage_cores`, `memory_usage_bytes`, `replicas`,
`desired_replicas`, `gpu_power_watts`, `node_power_watts`, … Exporters each spell them their own way
(node-exporter, cAdvisor, kube-state-metrics, DCGM exporter, OpenTelemetry semantic conventions). Every
source name here is stored under its canonical name: gauges directly (times `factor`), counters as
their raw series plus the canonical per-second rate (times `factor`; e.g. CPU seconds per second are
cores, DCGM's millijoule counter per second / 1000 is watts). docs/integrations.md shows the table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Canonical:
    metric: str
    """The name policies read."""
    unit: str
    rate: bool = False
    """The source is a counter: the canonical series is its per-second rate."""
    factor: float = 1.0
    """Multiplies the source value (or its rate) into `unit`."""


CPU = Canonical("cpu_usage_cores", "cores", rate=True)
MEMORY = Canonical("memory_usage_bytes", "B")

CANONICAL: dict[str, Canonical] = {
    # cAdvisor (kubelet /metrics/cadvisor)
    "container_cpu_usage_seconds_total": CPU,
    "container_memory_working_set_bytes": MEMORY,
    # kube-state-metrics
    "kube_deployment_status_replicas": Canonical("replicas", "replicas"),
    "kube_statefulset_status_replicas": Canonical("replicas", "replicas"),
    "kube_deployment_spec_replicas": Canonical("desired_replicas", "replicas"),
    "kube_statefulset_replicas": Canonical("desired_replicas", "replicas"),
    # DCGM exporter: power in W; total energy is a counter in millijoules
    "DCGM_FI_DEV_POWER_USAGE": Canonical("gpu_power_watts", "W"),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": Canonical("gpu_energy_watts", "W", rate=True, factor=1e-3),
    # node-exporter: RAPL package energy (J counter) and hwmon power sensors
    "node_rapl_package_joules_total": Canonical("cpu_power_watts", "W", rate=True),
    "node_hwmon_power_average_watt": Canonical("node_power_watts", "W"),
    # OpenTelemetry semantic conventions (kubeletstats / hostmetrics receivers)
    "k8s.pod.cpu.usage": Canonical("cpu_usage_cores", "cores"),
    "container.cpu.usage": Canonical("cpu_usage_cores", "cores"),
    "k8s.pod.cpu.time": CPU,
    "container.cpu.time": CPU,
    "k8s.pod.memory.working_set": MEMORY,
    "container.memory.working_set": MEMORY,
    "k8s.deployment.available": Canonical("replicas", "replicas"),
    "k8s.deployment.desired": Canonical("desired_replicas", "replicas"),
    "k8s.statefulset.current_pods": Canonical("replicas", "replicas"),
    "k8s.statefulset.desired_pods": Canonical("desired_replicas", "replicas"),
    "hw.host.power": Canonical("node_power_watts", "W"),
}


def canonical_of(metric: str) -> Canonical | None:
    """The canonical input a source metric feeds, or None when it is stored under its own name."""
    return CANONICAL.get(metric)


POD_LABELS = ("pod", "k8s_pod_name")
"""Labels that name one pod of a workload: kept on the pod's series; the workload's sum drops them."""
CONTAINER_LABELS = ("container", "k8s_container_name")
"""cAdvisor also reports the pod's own cgroup (`container=""`) and the pause container (`POD`); both
would count the pod twice in a sum, so those series are left out (counted as `pod_cgroup_total`)."""
