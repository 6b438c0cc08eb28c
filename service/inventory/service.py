"""Configure what Foresight manages: a workload's scaling settings, a node's pool / domain / hardware,
a power domain's budget. Entities also appear on their own when telemetry first names them."""

from __future__ import annotations

from typing import cast

from sqlalchemy.orm import Session

from policies.behavior import Behavior
from policies.slo import ScalingSlo
from policies.types import InvalidPolicyInput
from service.actuators.base import ScaleTarget
from service.errors import Conflict, InvalidInput, NotFound
from service.inventory import repository as repo
from service.inventory.hardware import check_hardware
from service.inventory.repository import Row
from service.inventory.schemas import (
    Mode,
    NodeConfig,
    NodeOut,
    PowerDomainConfig,
    PowerDomainOut,
    WorkloadConfig,
    WorkloadOut,
)
from service.models import Node, PowerDomain, Workload


def workload_out(row: Workload, cluster: str) -> WorkloadOut:
    return WorkloadOut(
        name=row.name,
        cluster=cluster,
        replicas=row.replicas,
        min_replicas=row.min_replicas,
        max_replicas=row.max_replicas,
        replica_capacity=row.replica_capacity,
        capacity_metric=row.capacity_metric,
        mode=row.mode,  # type: ignore[arg-type]
        priority=row.priority,
        slo=row.slo or {},
        scale_target=scale_target_of(row),
        behavior=row.behavior,
        performance_metric=row.performance_metric,
    )


def scale_target_of(row: Workload) -> str | None:
    """The `namespace/kind/name` actuators scale: set explicitly, or the name itself when it has that
    form (as workloads named from Kubernetes telemetry do)."""
    if row.scale_target:
        return row.scale_target
    try:
        return ScaleTarget.parse(row.name).ref
    except ValueError:
        return None


SCALABLE_KINDS = ("Deployment", "StatefulSet")


def _check_scale_target(value: str) -> None:
    try:
        target = ScaleTarget.parse(value)
    except ValueError as error:
        raise InvalidInput(str(error), details=[{"loc": ["body", "scale_target"]}]) from None
    if target.kind not in SCALABLE_KINDS:
        raise InvalidInput(
            f"scale_target kind {target.kind!r} cannot be scaled; use one of {', '.join(SCALABLE_KINDS)}",
            details=[{"loc": ["body", "scale_target"]}],
        )


def find(session: Session, model: type[Row], name: str, cluster: str | None) -> tuple[Row, str]:
    """One workload, node or power domain by name (and cluster when given), with its cluster's name;
    the 404 / 409 say what to do."""
    rows = repo.named(session, model, name, cluster)
    what = model.__tablename__.rstrip("s").replace("_", " ")
    if not rows:
        where = f" in cluster {cluster!r}" if cluster else ""
        raise NotFound(
            f"{what} {name!r} does not exist{where}; it appears once telemetry names it, or configure it"
        )
    if len(rows) > 1:
        clusters = ", ".join(sorted(c for _, c in rows))
        raise Conflict(f"{what} {name!r} exists in several clusters ({clusters}); say which with `cluster`")
    return rows[0]


find_or_create = repo.find_or_create
nodes_of_domain = repo.nodes_of_domain
workload_in_cluster = repo.workload_in_cluster


def set_node_status(session: Session, cluster_id: int | None, name: str, status: str) -> None:
    """Mark a node (a mitigation took it out, or its outcome brought it back); unknown nodes are left."""
    node = repo.node_in_cluster(session, cluster_id, name)
    if node is not None:
        node.status = status


def configure_workload(session: Session, name: str, config: WorkloadConfig) -> WorkloadOut:
    row, _ = repo.find_or_create(session, Workload, name, config.cluster)
    for field in config.model_fields_set - {"cluster"}:
        value = getattr(config, field)
        if value is not None:
            setattr(row, field, {**(row.slo or {}), **value} if field == "slo" else value)
    if row.max_replicas is not None and row.max_replicas < row.min_replicas:
        raise InvalidInput(
            f"max_replicas ({row.max_replicas}) is below min_replicas ({row.min_replicas})",
            details=[{"loc": ["body", "max_replicas"], "msg": "must be >= min_replicas"}],
        )
    try:
        ScalingSlo.from_mapping(row.slo)
    except InvalidPolicyInput as error:
        raise InvalidInput(str(error), details=[{"loc": ["body", "slo"], "msg": str(error)}]) from None
    try:
        Behavior.from_mapping(row.behavior)
    except InvalidPolicyInput as error:
        raise InvalidInput(str(error), details=[{"loc": ["body", "behavior"], "msg": str(error)}]) from None
    if config.scale_target is not None:
        _check_scale_target(config.scale_target)
    session.flush()
    return workload_out(row, config.cluster)


def list_workloads(session: Session, cluster: str | None, limit: int, offset: int) -> list[WorkloadOut]:
    return [workload_out(row, c) for row, c in repo.list_rows(session, Workload, cluster, limit, offset)]


def get_workload(session: Session, name: str, cluster: str | None) -> WorkloadOut:
    row, c = find(session, Workload, name, cluster)
    return workload_out(row, c)


def node_out(row: Node, cluster: str, domains: dict[int, str]) -> NodeOut:
    domain = domains.get(row.power_domain_id) if row.power_domain_id is not None else None
    return NodeOut(
        name=row.name,
        cluster=cluster,
        pool=row.pool,
        power_domain=domain,
        hardware=row.hardware or {},
        status=row.status,
    )


def configure_node(session: Session, name: str, config: NodeConfig) -> NodeOut:
    row, _ = repo.find_or_create(session, Node, name, config.cluster)
    if config.pool is not None:
        row.pool = config.pool
    if config.hardware is not None:
        check_hardware(config.hardware)
        row.hardware = {**(row.hardware or {}), **config.hardware}
    if config.status is not None:
        row.status = config.status
    if config.power_domain is not None:
        domain, _ = repo.find_or_create(session, PowerDomain, config.power_domain, config.cluster)
        row.power_domain_id = domain.id
    session.flush()
    return node_out(row, config.cluster, repo.domain_names(session, [row.power_domain_id]))


def list_nodes(session: Session, cluster: str | None, limit: int, offset: int) -> list[NodeOut]:
    rows = repo.list_rows(session, Node, cluster, limit, offset)
    domains = repo.domain_names(session, [r.power_domain_id for r, _ in rows])
    return [node_out(row, c, domains) for row, c in rows]


def domain_out(session: Session, row: PowerDomain, cluster: str) -> PowerDomainOut:
    nodes = [n.name for n in repo.nodes_of_domain(session, row.id)]
    mode = cast(Mode, row.mode)
    return PowerDomainOut(
        name=row.name, cluster=cluster, budget_watts=row.budget_watts, nodes=nodes, mode=mode
    )


def configure_domain(session: Session, name: str, config: PowerDomainConfig) -> PowerDomainOut:
    row, _ = repo.find_or_create(session, PowerDomain, name, config.cluster)
    if config.budget_watts is not None:
        row.budget_watts = config.budget_watts
    if config.mode is not None:
        row.mode = config.mode
    session.flush()
    return domain_out(session, row, config.cluster)


def list_domains(session: Session, cluster: str | None, limit: int, offset: int) -> list[PowerDomainOut]:
    return [
        domain_out(session, row, c) for row, c in repo.list_rows(session, PowerDomain, cluster, limit, offset)
    ]
