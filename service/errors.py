"""One error hierarchy for the whole service; a single handler turns these into JSON answers."""

from __future__ import annotations

from typing import Any


class ForesightError(Exception):
    """Base error: an HTTP status, a stable machine code, a message that says how to fix it."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def headers(self) -> dict[str, str]:
        return {}

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class InvalidInput(ForesightError):
    """The request is well-formed but its content is wrong (422)."""

    status_code = 422
    code = "invalid_input"


class MalformedRequest(ForesightError):
    """The body cannot be parsed at all (400)."""

    status_code = 400
    code = "malformed_request"


class PayloadTooLarge(ForesightError):
    """A batch or body over the configured limit (413)."""

    status_code = 413
    code = "payload_too_large"


class NotFound(ForesightError):
    status_code = 404
    code = "not_found"


class Conflict(ForesightError):
    """The request is valid but the state does not allow it yet (e.g. no trained model)."""

    status_code = 409
    code = "conflict"


class Unauthenticated(ForesightError):
    status_code = 401
    code = "unauthenticated"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ForesightError):
    status_code = 403
    code = "forbidden"


class DatabaseUnavailable(ForesightError):
    """The database cannot be reached or is busy: nothing was written, the client should retry."""

    status_code = 503
    code = "database_unavailable"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimited(ForesightError):
    """The key (or client address) spent its request budget: slow down and retry after the given time."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class InternalError(ForesightError):
    """A fault of the service, not of the request (500): the request id finds it in the log."""

    status_code = 500
    code = "internal_error"
