"""ORM models (SQLAlchemy 2). Importing this package registers every table on `Base.metadata`."""

from service.models.auth import ApiKey
from service.models.base import Base, UTCDateTime
from service.models.forecasts import JobRun, SeriesModel, StoredForecast
from service.models.inventory import Cluster, Node, PowerDomain, Workload
from service.models.loop import Actuation, LoopTarget
from service.models.operations import Decision, DecisionEvent, ModelRecord, NodeEvent, Outcome
from service.models.replays import ReplayRun
from service.models.telemetry import ENTITY_KINDS, Sample, Series

__all__ = [
    "ENTITY_KINDS",
    "Actuation",
    "ApiKey",
    "Base",
    "Cluster",
    "Decision",
    "DecisionEvent",
    "JobRun",
    "LoopTarget",
    "ModelRecord",
    "Node",
    "NodeEvent",
    "Outcome",
    "PowerDomain",
    "ReplayRun",
    "Sample",
    "Series",
    "SeriesModel",
    "StoredForecast",
    "UTCDateTime",
    "Workload",
]
