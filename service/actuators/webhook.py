"""The `webhook` actuator: POST each decision to a URL the operator runs, signed, retried, idempotent.

The contract (docs/actuation.md): a JSON body with the decision (`decision_id`, `kind`, `action`,
`target`, `params`, `dry_run`); headers `Idempotency-Key: foresight-decision-<id>` (a receiver that
already carried the decision out answers 2xx again and does nothing), `X-Foresight-Timestamp` (Unix
seconds) and `X-Foresight-Signature: sha256=<hex>` — the HMAC-SHA256 of `<timestamp>.<body>` under
`FORESIGHT_WEBHOOK_SECRET`, so a receiver can reject forged or replayed requests. 2xx is `applied` (a
JSON body's `observed` object, e.g. `{"replicas": 5}` or `{"power_limits_watts": {...}}`, is kept);
4xx but 408/429 is `refused` for good; 408, 429, 5xx, timeouts and connection errors are retried here
with exponential backoff and full jitter (honouring `Retry-After`), then handed back as `retry_later`.
Power caps reach the nodes this way: an agent on each node applies `nvidia-smi -pl` / NVML limits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from service.actuators.base import ActuationRequest, ActuationResult, ScaleTarget
from service.config import Settings
from service.integrations.retry import retry_after

RETRIED_STATUSES = {408, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER_SECONDS = 30.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of `<timestamp>.<body>`: what a receiver recomputes to trust a request."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def body_of(request: ActuationRequest) -> bytes:
    payload = {
        "decision_id": request.decision_id,
        "kind": request.kind,
        "action": request.action,
        "target": request.target,
        "params": request.params,
        "dry_run": request.dry_run,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


class WebhookActuator:
    """Delivers decisions to `FORESIGHT_WEBHOOK_URL`; never raises for the receiver's answers."""

    name = "webhook"

    def __init__(
        self,
        settings: Settings,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.url = settings.webhook_url
        self.secret = settings.webhook_secret
        self.timeout = settings.webhook_timeout_seconds
        self.max_attempts = settings.webhook_max_attempts
        self.base_delay = settings.webhook_backoff_seconds
        self.sleep = sleep
        self.rng = rng or random.Random()

    def apply(self, request: ActuationRequest) -> ActuationResult:
        if not self.url:
            return ActuationResult("failed", "the webhook actuator needs FORESIGHT_WEBHOOK_URL")
        body = body_of(request)
        last = ""
        with httpx.Client(timeout=self.timeout) as http:
            for attempt in range(1, self.max_attempts + 1):
                wait: float | None = None
                try:
                    response = http.post(self.url, content=body, headers=self._headers(request, body))
                except httpx.HTTPError as error:
                    last = f"{type(error).__name__}: {error}"[:300]
                else:
                    if response.is_success:
                        return ActuationResult(
                            "dry_run" if request.dry_run else "applied",
                            f"webhook answered {response.status_code}", attempts=attempt,
                            observed=_observed(response),
                        )  # fmt: skip
                    last = f"webhook answered {response.status_code}: {response.text[:200]}"
                    if response.status_code not in RETRIED_STATUSES:
                        return ActuationResult("refused", last, attempts=attempt)
                    asked = retry_after(response)
                    wait = None if asked is None else min(asked, MAX_RETRY_AFTER_SECONDS)
                if attempt < self.max_attempts:
                    self.sleep(wait if wait is not None else self._backoff(attempt))
        return ActuationResult(
            "retry_later", f"{last} (after {self.max_attempts} attempts)", retryable=True,
            attempts=self.max_attempts,
        )  # fmt: skip

    def current_replicas(self, target: ScaleTarget) -> int | None:
        return None  # a webhook reports back through telemetry or POST /v1/decisions/{id}/apply

    def _headers(self, request: ActuationRequest, body: bytes) -> dict[str, str]:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": f"foresight-decision-{request.decision_id}",
            "X-Foresight-Timestamp": timestamp,
            "User-Agent": "foresight-webhook/1",
        }
        if self.secret:
            headers["X-Foresight-Signature"] = signature(self.secret, timestamp, body)
        return headers

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, base · 2^(attempt-1)], so many senders do not retry in step."""
        return self.rng.uniform(0.0, self.base_delay * 2 ** (attempt - 1))


def _observed(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    observed = payload.get("observed") if isinstance(payload, dict) else None
    return observed if isinstance(observed, dict) else {}
