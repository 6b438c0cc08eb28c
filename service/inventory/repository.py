"""SQL of the inventory: look up or create clusters, workloads, nodes and power domains by name."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import Cluster, Node, PowerDomain, Workload

Row = TypeVar("Row", Workload, Node, PowerDomain)


def cluster_named(session: Session, name: str, create: bool) -> Cluster | None:
    row = session.scalars(select(Cluster).where(Cluster.name == name)).first()
    if row is None and create:
        row = Cluster(name=name)
        session.add(row)
        session.flush()
    return row


def named(
    session: Session, model: type[Row], name: str, cluster: str | None, limit: int = 3
) -> list[tuple[Row, str]]:
    """Rows called `name` (in `cluster` when given), each with its cluster's name."""
    query = (
        select(model, Cluster.name).join(Cluster, Cluster.id == model.cluster_id).where(model.name == name)
    )
    if cluster is not None:
        query = query.where(Cluster.name == cluster)
    return [(row, cluster_name) for row, cluster_name in session.execute(query.limit(limit)).all()]


def workload_in_cluster(session: Session, cluster_id: int | None, name: str) -> Workload | None:
    return session.scalars(
        select(Workload).where(Workload.cluster_id == cluster_id, Workload.name == name)
    ).first()


def node_in_cluster(session: Session, cluster_id: int | None, name: str) -> Node | None:
    return session.scalars(select(Node).where(Node.cluster_id == cluster_id, Node.name == name)).first()


def find_or_create(
    session: Session, model: type[Row], name: str, cluster: str, **defaults: Any
) -> tuple[Row, bool]:
    owner = cluster_named(session, cluster, create=True)
    assert owner is not None
    row = session.scalars(select(model).where(model.name == name, model.cluster_id == owner.id)).first()
    if row is not None:
        return row, False
    row = model(name=name, cluster_id=owner.id, **defaults)
    session.add(row)
    session.flush()
    return row, True


def list_rows(
    session: Session, model: type[Row], cluster: str | None, limit: int, offset: int
) -> list[tuple[Row, str]]:
    query = select(model, Cluster.name).join(Cluster, Cluster.id == model.cluster_id)
    if cluster is not None:
        query = query.where(Cluster.name == cluster)
    return list(session.execute(query.order_by(Cluster.name, model.name).limit(limit).offset(offset)).all())


def domain_names(session: Session, ids: list[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(
        session.execute(select(PowerDomain.id, PowerDomain.name).where(PowerDomain.id.in_(wanted))).all()
    )


def nodes_of_domain(session: Session, domain_id: int) -> list[Node]:
    return list(
        session.scalars(select(Node).where(Node.power_domain_id == domain_id).order_by(Node.name)).all()
    )


def nodes_with_status(session: Session, cluster_id: int, statuses: tuple[str, ...]) -> int:
    return len(
        session.scalars(select(Node.id).where(Node.cluster_id == cluster_id, Node.status.in_(statuses))).all()
    )
