"""Unknown query parameters are a 422 naming them, not silently ignored: `?serie=3` or `?limt=5` would
otherwise answer as if the filter had not been given. A global dependency compares the request's query
keys with those the matched API route declares (its own and its dependencies', the fields of a query
model included); the dashboard's pages are left alone (they read their notices from the query)."""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from service.errors import InvalidInput

API_PREFIXES = ("/v1/", "/api/")
_DECLARED: dict[int, frozenset[str]] = {}


def declared_query(route: APIRoute) -> frozenset[str]:
    """The query parameter names `route` reads."""
    found = _DECLARED.get(id(route))
    if found is None:
        found = _DECLARED[id(route)] = frozenset(_query_names(route.dependant))
    return found


def _query_names(dependant: Dependant) -> set[str]:
    names: set[str] = set()
    for param in dependant.query_params:
        annotation = param.field_info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.update(f.alias or n for n, f in annotation.model_fields.items())
        else:
            names.add(param.alias)
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def reject_unknown_query(request: Request) -> None:
    """422 when the query string holds a parameter the operation does not take."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.path.startswith(API_PREFIXES):
        return
    declared = declared_query(route)
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        takes = ", ".join(sorted(declared)) or "no query parameters"
        shown = [name.encode("unicode_escape").decode()[:100] for name in unknown]
        raise InvalidInput(
            f"query.{shown[0]}: unknown query parameter; this operation takes {takes}",
            details=[{"field": f"query.{name}", "problem": "unknown query parameter"} for name in shown],
        )
