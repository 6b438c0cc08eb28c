"""API documentation that works offline: Swagger UI at /docs and ReDoc at /redoc, their scripts and
styles served from the `fastapi-offline` package's bundled copies (Swagger UI: Apache 2.0, ReDoc: MIT;
licences in that package) instead of a CDN."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from service.errors import NotFound


def _assets() -> Path:
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("the fastapi-offline package (bundled Swagger UI / ReDoc) is not installed")
    return Path(spec.origin).parent / "static"


ASSETS = _assets()
FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
PREFIX = "/docs/assets"
router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Foresight API",
        swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{PREFIX}/favicon.png",
    )


@router.get("/redoc")
def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="Foresight API",
        redoc_js_url=f"{PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{PREFIX}/favicon.png",
        with_google_fonts=False,
    )


@router.get(PREFIX + "/{name}")
def asset(name: str) -> Response:
    if name not in FILES:
        raise NotFound(f"no documentation asset {name!r}")
    return FileResponse(ASSETS / name, media_type=FILES[name], headers={"Cache-Control": "max-age=86400"})
