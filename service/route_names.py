"""The name policy of service/names.py for path and query parameters (FastAPI's `Path` / `Query`), kept
apart so that code outside the web layer (the CLI, services) can check names without importing FastAPI."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator

from service.names import MAX_NAME, NAME_PATTERN, checked_name, name_problem


def _optional_name(value: str | None) -> str | None:
    if value is not None and (problem := name_problem(value)):
        raise ValueError(problem)
    return value


PathName = Annotated[
    str,
    Path(min_length=1, max_length=MAX_NAME, json_schema_extra={"pattern": NAME_PATTERN}),
    checked_name(MAX_NAME),
]
"""A name in the URL path (`/v1/workloads/{name}`)."""
QueryName = Annotated[
    str | None,
    Query(max_length=MAX_NAME, json_schema_extra={"pattern": NAME_PATTERN}),
    AfterValidator(_optional_name),
]
"""An optional name filter in the query string (`?cluster=west`)."""
