"""Units Foresight accepts, with their aliases and whether negative values are impossible for them."""

from __future__ import annotations

# canonical unit -> True when the quantity can never be negative
UNITS: dict[str, bool] = {
    "W": True, "kW": True, "J": True, "kWh": True,
    "%": True, "ratio": True, "1": False,
    "B": True, "KiB": True, "MiB": True, "GiB": True,
    "B/s": True, "MiB/s": True, "bit/s": True,
    "s": True, "ms": True, "us": True,
    "Hz": True, "MHz": True,
    "count": True, "req": True, "req/s": True, "req/min": True,
    "tokens": True, "tokens/s": True, "ops/s": True,
    "cores": True, "replicas": True,
    "Cel": False,
}  # fmt: skip

ALIASES: dict[str, str] = {
    "watts": "W", "watt": "W", "percent": "%", "bytes": "B", "By": "B", "bytes/s": "B/s",
    "seconds": "s", "milliseconds": "ms", "celsius": "Cel", "degC": "Cel", "requests": "req",
    "requests/s": "req/s", "rps": "req/s", "": "1",
}  # fmt: skip


def canonical_unit(unit: str) -> str | None:
    """The canonical spelling of a known unit, or None when Foresight does not know it."""
    if unit in UNITS:
        return unit
    return ALIASES.get(unit)


def is_non_negative(unit: str) -> bool:
    return UNITS.get(unit, False)


def known_units() -> list[str]:
    return sorted(UNITS)
