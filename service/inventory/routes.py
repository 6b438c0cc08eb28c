"""HTTP routes of the inventory: list and configure workloads, nodes and power domains."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.auth.schemas import Principal
from service.deps import SessionDep, require
from service.inventory import service
from service.inventory.schemas import (
    NodeConfig,
    NodeOut,
    PowerDomainConfig,
    PowerDomainOut,
    WorkloadConfig,
    WorkloadOut,
)
from service.route_names import PathName, QueryName

router = APIRouter(prefix="/v1", tags=["inventory"])
Read = Annotated[Principal, Depends(require("read"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Name = PathName
"""Workload names may hold slashes: `namespace/Deployment/name`, as Kubernetes names them."""
Cluster = QueryName
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]


@router.get("/workloads", response_model=list[WorkloadOut], summary="Workloads and their scaling settings")
def list_workloads(
    _: Read, session: SessionDep, cluster: Cluster = None, limit: Limit = 100, offset: Offset = 0
) -> list[WorkloadOut]:
    return service.list_workloads(session, cluster, limit, offset)


@router.get("/workloads/{name:path}", response_model=WorkloadOut, summary="One workload")
def get_workload(_: Read, session: SessionDep, name: Name, cluster: Cluster = None) -> WorkloadOut:
    return service.get_workload(session, name, cluster)


@router.put(
    "/workloads/{name:path}", response_model=WorkloadOut, summary="Create or configure a workload (admin)"
)
def put_workload(_: Admin, session: SessionDep, name: Name, body: WorkloadConfig) -> WorkloadOut:
    return service.configure_workload(session, name, body)


@router.get("/nodes", response_model=list[NodeOut], summary="Nodes with pool, power domain and status")
def list_nodes(
    _: Read, session: SessionDep, cluster: Cluster = None, limit: Limit = 100, offset: Offset = 0
) -> list[NodeOut]:
    return service.list_nodes(session, cluster, limit, offset)


@router.put("/nodes/{name}", response_model=NodeOut, summary="Create or configure a node (admin)")
def put_node(_: Admin, session: SessionDep, name: Name, body: NodeConfig) -> NodeOut:
    return service.configure_node(session, name, body)


@router.get("/power-domains", response_model=list[PowerDomainOut], summary="Power domains, budgets and nodes")
def list_domains(
    _: Read, session: SessionDep, cluster: Cluster = None, limit: Limit = 100, offset: Offset = 0
) -> list[PowerDomainOut]:
    return service.list_domains(session, cluster, limit, offset)


@router.put(
    "/power-domains/{name}", response_model=PowerDomainOut, summary="Create or set a domain's budget (admin)"
)
def put_domain(_: Admin, session: SessionDep, name: Name, body: PowerDomainConfig) -> PowerDomainOut:
    return service.configure_domain(session, name, body)
