"""/docs (Swagger UI) and /redoc work offline: every script and style they load is served by Foresight
from the bundled assets, none from a CDN."""

from __future__ import annotations

import re

import httpx

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def test_docs_and_redoc_load_only_local_assets(client: httpx.Client) -> None:
    for page in ("/docs", "/redoc"):
        answer = client.get(page)
        assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
        urls = ASSET.findall(answer.text)
        assert urls, page
        for url in urls:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
        assert "/openapi.json" in answer.text
    assert client.get("/openapi.json").json()["info"]["title"] == "Foresight"
    assert client.get("/docs/assets/../config.py").status_code == 404
