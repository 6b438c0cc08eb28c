"""Schemathesis hooks for tests/reliability/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS):
never revoke the fuzzer's own key, and train the cheap model so a positive training case costs
milliseconds rather than a LightGBM fit (every other field of the body is still generated)."""

from __future__ import annotations

import os
from typing import Any

import schemathesis

PROTECTED_KEY = int(os.environ.get("FORESIGHT_FUZZ_PROTECTED_KEY", "0"))
CHEAP_TRAINING = {"model": "seasonal_naive", "backtest": False}


def _label(context: Any) -> str:
    operation = context.operation
    return f"{operation.method.upper()} {operation.path}" if operation is not None else ""


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Every phase's cases pass here (examples, coverage, fuzzing, stateful) just before they are sent."""
    parameters = case.path_parameters or {}
    if str(parameters.get("key_id", "")).strip() == str(PROTECTED_KEY):
        parameters["key_id"] = -1
    if _label(context) == "POST /v1/models/train" and isinstance(case.body, dict):
        case.body.update(CHEAP_TRAINING)
