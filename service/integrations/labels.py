"""Label mapping: which labels of a Prometheus / OTLP series name the cluster, the entity (node, workload,
power domain) and which stay series labels; which unit a metric has and whether it is a counter.

The defaults know node-exporter, kube-state-metrics, cAdvisor and DCGM naming; a YAML or JSON file
(`FORESIGHT_INTEGRATION_MAPPING`) replaces them. Resolving is per series, not per sample, and cached, since
the same series arrive in every remote-write request.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.errors import ForesightError
from service.integrations.canonical import CONTAINER_LABELS, POD_LABELS, canonical_of
from service.names import name_problem
from service.telemetry.units import canonical_unit, is_non_negative
from service.telemetry.validation import LABEL_RE, MAX_LABELS, METRIC_RE, SeriesKey

POD_SUFFIX = r"(-[a-z0-9]{6,10})?-[a-z0-9]{5}$|-[0-9]+$"  # deployment (replicaset hash + pod id), statefulset
PORT_SUFFIX = r":[0-9]+$"
RATE_UNITS = {"B": "B/s", "count": "ops/s", "req": "req/s", "J": "W", "tokens": "tokens/s"}


class MappingError(ForesightError):
    """The configured mapping file is unusable: a server problem (500), so senders retry, not drop."""

    status_code = 500
    code = "configuration_error"


class EntityRule(BaseModel):
    """Take the entity of `kind` from `label`, after removing what `strip` (a regex) matches."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["node", "workload", "power_domain"]
    label: str
    strip: str | None = None


class Rule(BaseModel):
    """Series whose metric name matches `match` (a regex, searched) are mapped by this rule."""

    model_config = ConfigDict(extra="forbid")
    name: str
    match: str
    entity: list[EntityRule] = Field(min_length=1, description="Candidates, first present label wins.")
    keep: list[str] | None = Field(default=None, description="Series labels kept (default: all others).")
    drop: list[str] = Field(default_factory=list, description="Labels never kept as series labels.")
    units: dict[str, str] = Field(default_factory=dict, description="Metric name -> unit, before suffixes.")
    counters: list[str] = Field(default_factory=list, description="Metric names that are counters.")
    skip_cgroup_totals: bool = Field(
        default=False,
        description="Leave out a pod's own cgroup and pause container (no or empty `container`, or `POD`).",
    )


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cluster_labels: list[str] = ["cluster", "k8s_cluster_name", "cluster_name"]
    default_cluster: str = "default"
    drop_labels: list[str] = ["prometheus", "prometheus_replica"]
    counter_suffixes: list[str] = ["_total", "_count", "_sum", "_bucket"]
    unit_suffixes: list[tuple[str, str]] = [
        ("_bytes_total", "B"),
        ("_bytes", "B"),
        ("_seconds_total", "s"),
        ("_seconds", "s"),
        ("_watts", "W"),
        ("_joules_total", "J"),
        ("_joules", "J"),
        ("_celsius", "Cel"),
        ("_ratio", "ratio"),
        ("_percent", "%"),
        ("_hertz", "Hz"),
        ("_total", "count"),
    ]
    rules: list[Rule]


_NODE = [EntityRule(kind="node", label="instance", strip=PORT_SUFFIX)]
_HOST = [
    EntityRule(kind="node", label=label, strip=PORT_SUFFIX)
    for label in ("Hostname", "kubernetes_node", "node", "k8s_node_name", "host_name", "instance")
]
DEFAULT_MAPPING = Mapping(
    rules=[
        Rule(
            name="dcgm",
            match="^DCGM_FI_",
            entity=_HOST,
            drop=["UUID", "device", "pci_bus_id", "container", "pod", "namespace", "modelName"],
            units={
                "DCGM_FI_DEV_POWER_USAGE": "W",
                "DCGM_FI_DEV_POWER_MGMT_LIMIT": "W",
                "DCGM_FI_DEV_GPU_UTIL": "%",
                "DCGM_FI_DEV_MEM_COPY_UTIL": "%",
                "DCGM_FI_DEV_GPU_TEMP": "Cel",
                "DCGM_FI_DEV_MEMORY_TEMP": "Cel",
                "DCGM_FI_DEV_SM_CLOCK": "MHz",
                "DCGM_FI_DEV_MEM_CLOCK": "MHz",
                "DCGM_FI_DEV_FB_USED": "MiB",
                "DCGM_FI_DEV_FB_FREE": "MiB",
                "DCGM_FI_PROF_GR_ENGINE_ACTIVE": "ratio",
                "DCGM_FI_PROF_SM_ACTIVE": "ratio",
                "DCGM_FI_PROF_DRAM_ACTIVE": "ratio",
                "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "count",
            },
            counters=["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"],
        ),
        Rule(
            name="kube-state-metrics nodes",
            match="^kube_node_",
            entity=[EntityRule(kind="node", label="node")],
            drop=["instance", "job", "uid"],
        ),
        Rule(
            name="kube-state-metrics workloads",
            match="^kube_(deployment|statefulset|daemonset|replicaset|job)_",
            entity=[
                EntityRule(kind="workload", label=label)
                for label in ("deployment", "statefulset", "daemonset", "replicaset", "job_name")
            ],
            drop=["instance", "job", "uid"],
        ),
        Rule(
            name="kube-state-metrics pods",
            match="^kube_pod_",
            entity=[EntityRule(kind="workload", label="pod", strip=POD_SUFFIX)],
            drop=["instance", "job", "uid", "node", "pod_ip", "host_ip"],
        ),
        Rule(
            name="cadvisor",
            match="^container_",
            entity=[EntityRule(kind="workload", label="pod", strip=POD_SUFFIX), *_HOST],
            drop=["id", "image", "name", "instance", "job", "metrics_path"],
            skip_cgroup_totals=True,
        ),
        Rule(
            name="node-exporter",
            match="^node_",
            entity=[EntityRule(kind="node", label="nodename"), *_NODE],
            drop=["instance"],
        ),
        Rule(
            name="otlp and everything else",
            match="",
            entity=[
                EntityRule(kind="workload", label=label)
                for label in ("k8s_deployment_name", "k8s_statefulset_name", "k8s_daemonset_name")
            ]
            + [EntityRule(kind="workload", label="k8s_pod_name", strip=POD_SUFFIX)]
            + _HOST
            + [EntityRule(kind="workload", label=label) for label in ("service_name", "job")],
        ),
    ]
)


@dataclass(frozen=True)
class Mapped:
    """Where a source series goes: its Foresight identity, unit, and whether it is a counter."""

    key: SeriesKey
    unit: str
    labels: dict[str, str]
    counter: bool
    non_negative: bool
    factor: float = 1.0
    """Multiplies the source values into `unit` (canonical inputs, e.g. mJ → J)."""
    rate_metric: str | None = None
    """For a counter feeding a canonical input: the name, unit and factor of its per-second rate."""
    rate_unit: str | None = None
    rate_factor: float = 1.0


class CompiledMapping:
    """A mapping with compiled regexes and a bounded per-series cache."""

    CACHE_SIZE = 200_000

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        self.rules = [
            (re.compile(rule.match), rule, {e.label: _compile(e.strip) for e in rule.entity})
            for rule in mapping.rules
        ]
        self.cache: dict[tuple[object, ...], Mapped | str] = {}

    def resolve(
        self,
        name: str,
        labels: tuple[tuple[str, str], ...],
        context: tuple[tuple[str, str], ...] = (),
        unit_hint: str | None = None,
        counter_hint: bool | None = None,
    ) -> Mapped | str:
        """The mapped series, or the reason (a short word) it cannot be stored."""
        cache_key = (name, labels, context, unit_hint, counter_hint)
        found = self.cache.get(cache_key)
        if found is None:
            if len(self.cache) >= self.CACHE_SIZE:
                self.cache.clear()
            found = self.cache[cache_key] = self._resolve(
                name, dict(labels), dict(context), unit_hint, counter_hint
            )
        return found

    def _resolve(
        self,
        name: str,
        labels: dict[str, str],
        context: dict[str, str],
        unit_hint: str | None,
        counter_hint: bool | None,
    ) -> Mapped | str:
        if not METRIC_RE.match(name):
            return "invalid_metric_name"
        lookup = {**context, **labels}
        mapping = self.mapping
        cluster_label = next((c for c in mapping.cluster_labels if lookup.get(c)), None)
        cluster = lookup[cluster_label] if cluster_label else mapping.default_cluster
        matched = next(((rule, strips) for pattern, rule, strips in self.rules if pattern.search(name)), None)
        if matched is None:
            return "no_rule"
        rule, strips = matched
        entity = None
        for candidate in rule.entity:
            value = lookup.get(candidate.label)
            if value:
                strip = strips[candidate.label]
                entity = (candidate.kind, candidate.label, strip.sub("", value) if strip else value)
                break
        if entity is None or not entity[2]:
            return "no_entity"
        kind, used, entity_id = entity
        if rule.skip_cgroup_totals and kind == "workload" and used in POD_LABELS:
            container = next((labels[c] for c in CONTAINER_LABELS if labels.get(c)), "")
            if container in ("", "POD"):
                return "pod_cgroup_total"
        dropped = {*mapping.drop_labels, *rule.drop, used, cluster_label}
        kept = {k: v for k, v in labels.items() if k not in dropped and v != ""}
        if kind == "workload" and used in POD_LABELS:
            kept["pod"] = lookup[used]  # one series per pod; the workload's sum is rolled up from them
        namespace = lookup.get("k8s_namespace_name")
        if namespace and "namespace" not in kept:
            kept["namespace"] = namespace
        if rule.keep is not None:
            kept = {k: v for k, v in kept.items() if k in rule.keep}
        if len(kept) > MAX_LABELS:
            return "too_many_labels"
        if any(not LABEL_RE.match(k) or name_problem(v, allow_empty=True) for k, v in kept.items()):
            return "invalid_label"
        if name_problem(cluster) or name_problem(entity_id):
            return "invalid_entity"
        unit = self._unit(rule, name, unit_hint)
        counter = (
            counter_hint
            if counter_hint is not None
            else (name in rule.counters or name.endswith(tuple(mapping.counter_suffixes)))
        )
        labels_key = json.dumps(kept, sort_keys=True, separators=(",", ":"))
        canonical = canonical_of(name)
        if canonical is None:
            return Mapped(SeriesKey(cluster, kind, entity_id, name, labels_key), unit, kept, bool(counter),
                          is_non_negative(unit))  # fmt: skip
        if canonical.rate:
            key = SeriesKey(cluster, kind, entity_id, name, labels_key)
            return Mapped(key, unit, kept, True, is_non_negative(unit), rate_metric=canonical.metric,
                          rate_unit=canonical.unit, rate_factor=canonical.factor)  # fmt: skip
        key = SeriesKey(cluster, kind, entity_id, canonical.metric, labels_key)
        return Mapped(key, canonical.unit, kept, False, is_non_negative(canonical.unit), canonical.factor)

    def _unit(self, rule: Rule, name: str, hint: str | None) -> str:
        if name in rule.units:
            return canonical_unit(rule.units[name]) or "1"
        if hint:
            return otlp_unit(hint)
        if name.endswith(("_count", "_bucket")):
            return "count"
        base = name.removesuffix("_sum")
        for suffix, unit in self.mapping.unit_suffixes:
            if base.endswith(suffix):
                return canonical_unit(unit) or "1"
        return "1"


def otlp_unit(unit: str) -> str:
    """A UCUM unit of OTLP as a Foresight unit: known ones kept, `{things}` counted, the rest unitless."""
    known = canonical_unit(unit)
    if known is not None:
        return known
    if unit.startswith("{") and unit.endswith("}"):
        return "count"
    return {"By/s": "B/s", "{request}/s": "req/s", "Cel": "Cel", "KiBy": "KiB", "MiBy": "MiB"}.get(unit, "1")


def rate_series(mapped: Mapped) -> Mapped:
    """The per-second rate series derived from a counter: `<name without _total>:rate`."""
    key = mapped.key
    metric = mapped.rate_metric or key.metric.removesuffix("_total") + ":rate"
    unit = mapped.rate_unit or RATE_UNITS.get(mapped.unit, "1")
    rate_key = SeriesKey(key.cluster, key.kind, key.name, metric, key.labels_key)
    return Mapped(rate_key, unit, mapped.labels, False, True, mapped.rate_factor)


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern else None


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> CompiledMapping:
    text = Path(path).read_text()
    try:
        raw = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        return CompiledMapping(Mapping.model_validate(raw))
    except (ValidationError, yaml.YAMLError, json.JSONDecodeError, re.error) as error:
        raise MappingError(f"label mapping {path} is invalid: {error}") from error


_DEFAULT = CompiledMapping(DEFAULT_MAPPING)


def load_mapping(path: str) -> CompiledMapping:
    """The mapping of a file (reloaded when it changes), or the built-in defaults for an empty path."""
    if not path:
        return _DEFAULT
    file = Path(path)
    if not file.is_file():
        raise MappingError(f"label mapping file {path} does not exist (FORESIGHT_INTEGRATION_MAPPING)")
    return _load(str(file), file.stat().st_mtime)
