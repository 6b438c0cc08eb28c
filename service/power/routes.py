"""HTTP routes of the power recommendations (scope `operate`); each answer is a recorded Decision."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.auth.schemas import Principal
from service.decisions.schemas import DecisionOut
from service.deps import SessionDep, require
from service.power import service
from service.power.schemas import EnergyRequest, OversubscriptionQuery, OversubscriptionRequest, PowerRequest

router = APIRouter(prefix="/v1", tags=["power"])
Operate = Annotated[Principal, Depends(require("operate"))]


@router.post(
    "/recommendations/power",
    response_model=DecisionOut,
    status_code=201,
    summary="Caps for a power domain over the next window (recorded as a decision)",
    description=(
        "Keeps P(domain total > budget) <= epsilon with the forecast of the domain total (series of entity "
        "kind `power_domain`, metric `power_watts`): low-priority servers are capped first. Without a usable "
        "forecast the reactive rule on measured power answers and `explanation.fallback_reason` says why."
    ),
)
def recommend_power(principal: Operate, session: SessionDep, body: PowerRequest) -> DecisionOut:
    return service.recommend_power(session, body, principal.actor)


OVERSUBSCRIPTION = (
    "`params.extra_servers` (with capping headroom) and `params.extra_servers_without_capping` for new "
    "servers described by `profile`, `gpus`, `priority` and `host_watts`, against nameplate sizing "
    "(`explanation.details.nameplate_extra`). Without a forecast the answer is nameplate sizing."
)


@router.get(
    "/recommendations/oversubscription",
    response_model=DecisionOut,
    summary="How many more servers a power domain holds at risk epsilon (answered, not recorded)",
    description=OVERSUBSCRIPTION + " A GET writes nothing: the answer has id 0 and no history; POST the "
    "same question to record it as a shadow decision in the audit log.",
)
def oversubscription(
    principal: Operate, session: SessionDep, query: Annotated[OversubscriptionQuery, Query()]
) -> DecisionOut:
    return service.oversubscription(session, query, principal.actor, store=False)


@router.post(
    "/recommendations/oversubscription",
    response_model=DecisionOut,
    status_code=201,
    summary="How many more servers a power domain holds at risk epsilon (recorded as a shadow decision)",
    description=OVERSUBSCRIPTION,
)
def record_oversubscription(
    principal: Operate, session: SessionDep, body: OversubscriptionRequest
) -> DecisionOut:
    return service.oversubscription(session, body, principal.actor)


@router.post(
    "/recommendations/energy",
    response_model=DecisionOut,
    status_code=201,
    summary="Energy-minimising LLM serving configuration under the latency SLOs",
    description=(
        "Tensor parallelism, batch size, GPU power limit and instance count at the forecast request rate "
        "of the workload; without a forecast every GPU uncapped (maximum capacity)."
    ),
)
def recommend_energy(principal: Operate, session: SessionDep, body: EnergyRequest) -> DecisionOut:
    return service.recommend_energy(session, body, principal.actor)
