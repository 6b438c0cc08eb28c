"""Document the service's real error answers in OpenAPI: one `Error` body for every 4xx/5xx the error
handler or the edge middleware can send, so clients and the fuzzer can check every answer against it
(FastAPI's default 422 `HTTPValidationError` is not what the service sends)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code."},
                "message": {"type": "string", "description": "What was wrong and how to fix it."},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}
}
# status -> (description, headers) for every secured API operation
SECURED_ERRORS: dict[str, tuple[str, dict[str, Any]]] = {
    "400": ("Malformed request", {}),
    "401": ("Missing, unknown or revoked API key", {}),
    "403": ("The key lacks the scope this operation needs", {}),
    "404": ("The named resource does not exist", {}),
    "409": ("The resource's state does not allow this yet", {}),
    "413": ("Body over the configured limit", {}),
    "422": ("Invalid input, naming the field", {}),
    "429": ("Rate limit exceeded for this key; retry after Retry-After", RETRY_AFTER),
    "503": ("Database unavailable or busy; nothing written; retry after Retry-After", RETRY_AFTER),
}
METHODS = ("get", "put", "post", "delete", "patch")


def document_errors(app: FastAPI) -> None:
    """Wrap `app.openapi` so every operation lists the error answers it can give, with their body."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        schema = original()
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for path_item in schema.get("paths", {}).values():
            for method in METHODS:
                if method in path_item:
                    _add_errors(path_item[method])
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_errors(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if not operation.get("security"):
        return  # probes answer their own bodies and are never rate limited
    for status, (description, headers) in SECURED_ERRORS.items():
        entry = responses.get(status) or {"description": description}
        entry["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        if headers:
            entry["headers"] = headers
        responses[status] = entry
