"""How long a client waits before retrying a request: the server's `Retry-After` when it sends one
(seconds or an HTTP date), else exponential backoff with full jitter, so many clients refused at the same
moment (a restart, a rate limit) do not come back in lockstep."""

from __future__ import annotations

import email.utils
import math
import random
import time

import httpx

BASE_SECONDS = 0.5
MAX_SECONDS = 60.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})


def should_retry(answer: httpx.Response) -> bool:
    """A refusal worth retrying: rate limited, or the server (or a proxy) is failing or busy."""
    return answer.status_code in RETRY_STATUSES or answer.status_code >= 500


def retry_after(answer: httpx.Response | None, now: float | None = None) -> float | None:
    """Seconds the server asked to wait (`Retry-After`), or None when it did not say (or said nonsense)."""
    value = answer.headers.get("retry-after", "").strip() if answer is not None else ""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def delay(attempt: int, answer: httpx.Response | None, rng: random.Random) -> float:
    """The wait before retry number `attempt` (0-based): Retry-After (capped) plus a little jitter, else
    a uniform draw in [0, BASE * 2**attempt] (capped)."""
    asked = retry_after(answer)
    if asked is not None:
        return min(asked, MAX_SECONDS) + rng.uniform(0, BASE_SECONDS)
    return rng.uniform(0, min(MAX_SECONDS, BASE_SECONDS * 2**attempt))
