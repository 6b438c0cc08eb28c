"""Parsing of times and durations in query parameters: RFC 3339 or epoch seconds; `10s`, `5m`, `1h`."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from service.errors import InvalidInput

DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)?$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_time(value: str, name: str) -> datetime:
    """An aware UTC datetime from RFC 3339 (with offset) or epoch seconds."""
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise InvalidInput(
            f"{name}={value!r} is neither epoch seconds nor an RFC 3339 time",
            details=[{"field": name, "problem": "unparseable time"}],
        ) from error
    if moment.tzinfo is None:
        raise InvalidInput(
            f"{name}={value!r} has no timezone offset; add Z or +00:00",
            details=[{"field": name, "problem": "missing timezone"}],
        )
    return moment.astimezone(UTC)


def parse_duration(value: str, name: str) -> float:
    """Seconds from `90`, `10s`, `5m`, `1h` or `1d`."""
    match = DURATION_RE.match(value.strip())
    if not match or float(match.group(1)) <= 0:
        raise InvalidInput(
            f"{name}={value!r} is not a positive duration like 10s, 5m, 1h or a number of seconds",
            details=[{"field": name, "problem": "bad duration"}],
        )
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]
