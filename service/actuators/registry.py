"""Actuators by name: how a target's `actuator` setting becomes the object that carries decisions out."""

from __future__ import annotations

from collections.abc import Callable

from service.actuators.base import ActuationRequest, ActuationResult, Actuator, ScaleTarget
from service.config import Settings
from service.errors import InvalidInput


class NoActuator:
    """Records only: nothing leaves Foresight (an external reader such as KEDA may act on decisions)."""

    name = "none"

    def apply(self, request: ActuationRequest) -> ActuationResult:
        return ActuationResult("skipped", "actuator none: recorded only, nothing sent to the cluster")

    def current_replicas(self, target: ScaleTarget) -> int | None:
        return None


def _kubernetes(settings: Settings) -> Actuator:
    from service.actuators.kubernetes import KubernetesActuator  # the client is heavy: load on use

    return KubernetesActuator(settings)


def _webhook(settings: Settings) -> Actuator:
    from service.actuators.webhook import WebhookActuator

    return WebhookActuator(settings)


FACTORIES: dict[str, Callable[[Settings], Actuator]] = {
    "none": lambda _: NoActuator(),
    "kubernetes": _kubernetes,
    "webhook": _webhook,
}
ACTUATORS: list[str] = list(FACTORIES)


def register_actuator(name: str, factory: Callable[[Settings], Actuator]) -> None:
    """Make another actuator available by name (a site-specific one, or a scripted one in tests)."""
    FACTORIES[name] = factory
    if name not in ACTUATORS:
        ACTUATORS.append(name)


def actuator_for(name: str, settings: Settings) -> Actuator:
    """The actuator called `name`, configured from `settings`; a 422 names the known ones."""
    factory = FACTORIES.get(name)
    if factory is None:
        raise InvalidInput(f"unknown actuator {name!r}; known: {', '.join(ACTUATORS)}")
    return factory(settings)
