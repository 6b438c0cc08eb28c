"""Parsing of times and durations in query parameters: RFC 3339 or epoch seconds; `10s`, `5m`, `1h`."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from service.errors import InvalidInput

DURATION_RE = re.compile(r"(\d{1,30}(?:\.\d{1,30})?)(s|m|h|d)?")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
MAX_DURATION_SECONDS = 100 * 365 * 86400
"""Longer than any stored history can span (timestamps run 1970-2100): a bigger step is a typo."""


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
    match = DURATION_RE.fullmatch(value.strip())
    if not match or float(match.group(1)) <= 0:
        raise InvalidInput(
            f"{name}={value!r} is not a positive duration like 10s, 5m, 1h, 1d or a number of seconds "
            "(no exponent)",
            details=[{"field": name, "problem": "bad duration"}],
        )
    seconds = float(match.group(1)) * UNIT_SECONDS[match.group(2)]
    if seconds > MAX_DURATION_SECONDS:
        raise InvalidInput(
            f"{name}={value!r} is longer than the limit of {MAX_DURATION_SECONDS // 86400} days",
            details=[{"field": name, "problem": "duration too long"}],
        )
    return seconds
