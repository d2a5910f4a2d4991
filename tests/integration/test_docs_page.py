"""The API reference page: served with its own assets and policy, and rendered by a browser."""

from __future__ import annotations

import re
import shutil
import subprocess

import anyio
import httpx
import pytest

from server.http.docs import DOCS_CONTENT_SECURITY_POLICY
from tests.support.live_server import LiveServer


async def test_the_page_loads_only_same_origin_scripts_that_the_server_serves(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/schema")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == DOCS_CONTENT_SECURITY_POLICY
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert scripts
    sources = [re.search(r'src="([^"]+)"', attributes) for attributes in scripts]
    assert all(source is not None for source in sources), "an inline script"
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text)
    for url in [*(s.group(1) for s in sources if s is not None), *styles]:
        assert url.startswith("/schema/assets/"), url
        asset = await http.get(url)
        assert asset.status_code == 200, url
        assert asset.content
    licence = await http.get("/schema/assets/LICENSE")
    assert "Apache License" in licence.text
    # Everything else keeps the strict policy.
    for path in ("/schema/openapi.json", "/health/live"):
        answer = await http.get(path)
        assert answer.headers["content-security-policy"].startswith("default-src 'none';")
        assert "script-src" not in answer.headers["content-security-policy"]


def _rendered(url: str) -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    result = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-extensions", "--no-first-run",
            "--virtual-time-budget=15000", "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


async def test_a_browser_renders_every_operation(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        document = (await http.get("/schema/openapi.json")).json()
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    }
    assert operations
    dom = await anyio.to_thread.run_sync(_rendered, live_server.base_url + "/schema")
    shown = {
        (method, path)
        for method, path in re.findall(
            r'class="opblock-summary-method">(\w+)</span>.*?data-path="([^"]+)"', dom
        )
    }
    assert operations <= shown, sorted(operations - shown)[:10]
