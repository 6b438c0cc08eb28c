"""Strict checks of a node's `hardware` settings when they are written (`PUT /v1/nodes/{name}`), so a
power decision never meets a value it cannot use: the GPU profile must be one the policies know, numbers
must be real finite numbers (not booleans, not numeric strings) within range, other values printable."""

from __future__ import annotations

from typing import Any

from policies.power_profiles import gpu_curve
from policies.slo import strict_number
from policies.types import PolicyError
from service.errors import InvalidInput
from service.names import name_problem, text_problem

# key -> (smallest allowed, whole number)
NUMBERS: dict[str, tuple[float, bool]] = {
    "gpus": (1, True), "priority": (-1000, True), "host_watts": (0, False),
    "power_limit_watts": (0, False), "nameplate_watts": (0, False), "idle_watts": (0, False),
}  # fmt: skip
PROFILE_KEYS = ("profile", "gpu")


def _bad(key: str, problem: str) -> InvalidInput:
    field = f"body.hardware.{key}"
    return InvalidInput(f"{field}: {problem}", details=[{"field": field, "problem": problem}])


def check_hardware(hardware: dict[str, Any]) -> None:
    """Refuse (422 naming the field) a hardware mapping a power decision could not use."""
    for key, value in hardware.items():
        if problem := name_problem(key, max_length=100):
            raise _bad(key.encode("unicode_escape").decode()[:100], f"key {problem}")
        if value is None:
            continue
        if key in NUMBERS:
            low, whole = NUMBERS[key]
            number = strict_number(value)
            if number is None:
                raise _bad(key, f"must be a finite number, got {value!r}")
            if whole and number != int(number):
                raise _bad(key, f"must be a whole number, got {value!r}")
            if number < low:
                raise _bad(key, f"must be >= {low:g}, got {value!r}")
        elif key in PROFILE_KEYS:
            if not isinstance(value, str) or name_problem(value, max_length=100):
                raise _bad(key, f"must be a GPU profile name, got {value!r}")
            try:
                gpu_curve(value)
            except PolicyError as error:
                raise _bad(key, str(error)) from None
        elif isinstance(value, str) and (problem := text_problem(value)):
            raise _bad(key, problem)
