"""Import every policy module so the registry knows them all (the service, the replay, the conformance
suite and the CLI call `load_all()` before listing or building policies)."""

from __future__ import annotations

import importlib

POLICY_MODULES = (
    "policies.scaling",
    "policies.baselines",
    "policies.rightsizing",
    "policies.power",
    "policies.oversubscription",
    "policies.energy",
    "policies.mitigation",
    "policies.mitigation_rules",
)


def load_all() -> None:
    for module in POLICY_MODULES:
        importlib.import_module(module)
