"""The dashboard in a real browser (Debian's Chromium under Playwright) against the live server: log in,
overview charts, a workload's forecast fan, approve a decision and find it in the audit log with its
actor, start a small replay and see its result; no console errors anywhere; a screenshot of each page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.dashboard.conftest import SCREENSHOTS, Keys

REPLAY_CONFIG = '{"step_seconds": 300, "max_steps": 120, "power": {"policy": "none"}}'
TIMEOUT_MS = 60_000


class Errors:
    """Console errors and uncaught page errors of every page a test visits."""

    def __init__(self, page: Any) -> None:
        self.items: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.items.append(f"pageerror: {error}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.items.append(f"console: {message.text} at {message.location}")


def _shot(page: Any, backend: str, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{backend}-{name}.png"), full_page=True)


def _charted(page: Any, chart_id: str) -> list[dict[str, Any]]:
    """Wait until plotly has drawn into the chart div, then the traces it drew."""
    page.locator(f"#{chart_id} .main-svg").first.wait_for(state="visible", timeout=TIMEOUT_MS)
    traces: list[dict[str, Any]] = page.evaluate(
        "id => document.getElementById(id).data.map(t => ({name: t.name, fill: t.fill || null}))", chart_id
    )
    return traces


@pytest.fixture
def page(browser: Any, live_server: Any) -> Any:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()


def test_operator_flow_in_a_browser(
    page: Any, browser: Any, live_server: Any, backend: str, keys: Keys, seeded: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    errors = Errors(page)

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    _shot(page, backend, "login")
    page.get_by_label("API key").fill(keys["operate"])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
    names = {t["name"] for t in _charted(page, "chart-w1")}  # one small chart per workload
    assert {"load", "80% interval", "replicas"} <= names, names
    workload_link = page.get_by_role("link", name="web", exact=True).first
    expect(workload_link).to_be_visible()
    _shot(page, backend, "overview")

    workload_link.click()
    expect(page.get_by_role("heading", name=re.compile("Workload web"))).to_be_visible()
    traces = _charted(page, "chart-workload")
    names = {t["name"] for t in traces}
    assert {"actual", "forecast median", "80% interval", "50% interval"} <= names, names
    assert sum(t["fill"] == "tonexty" for t in traces) >= 2
    expect(page.get_by_text(f"#{seeded['id']}")).to_be_visible()
    _shot(page, backend, "workload")

    page.get_by_role("link", name="Power").click()
    expect(page.get_by_role("heading", name="rack-1")).to_be_visible()
    names = {t["name"] for t in _charted(page, "chart-domain-1")}
    assert {"actual", "80% interval", "budget"} <= names, names
    page.get_by_label("GPUs per server").fill("4")
    page.get_by_role("button", name="Ask").click()
    expect(page.get_by_role("status")).to_contain_text("more a100 servers fit")
    _shot(page, backend, "power")

    page.get_by_role("link", name="Nodes").click()
    expect(page.locator("#node-g2")).to_contain_text("ecc_errors")
    expect(page.locator("#node-g2")).to_contain_text("Fallback:")  # no causal model yet: the legacy rule
    _shot(page, backend, "nodes")

    page.get_by_role("link", name="Decisions").click()
    page.get_by_label(f"Note for decision {seeded['id']}").fill("checked in the dashboard")
    page.get_by_role("button", name=f"Approve decision {seeded['id']}").click()
    notice = f"decision {seeded['id']} approved by operate-key"
    expect(page.get_by_role("status")).to_contain_text(notice)
    row = page.locator("#audit-log tr", has_text=f"#{seeded['id']}")
    expect(row).to_contain_text("approved")
    expect(row.locator("td.actor")).to_contain_text("operate-key")
    _shot(page, backend, "decisions")

    page.get_by_role("link", name="Replays").click()
    page.get_by_label("Bundled trace").select_option("nab-ec2-cpu")
    page.get_by_label("Policy, or several").fill("hpa")
    page.get_by_label("Configuration").fill(REPLAY_CONFIG)
    _shot(page, backend, "replays")
    page.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/replays/\d+$"))
    expect(page.locator("#result")).to_be_visible(timeout=150_000)  # the page refreshes itself
    expect(page.locator("#replay-status")).to_contain_text("succeeded")
    _shot(page, backend, "replay")
    page.locator("#report-link").click()
    page.wait_for_load_state("load")
    _shot(page, backend, "replay-report")
    page.get_by_role("link", name=re.compile("back to replay")).click()
    expect(page.locator("#replay-status")).to_contain_text("succeeded")

    page.get_by_role("link", name="Savings").click()
    page.get_by_label("Workload").select_option("west/web")
    page.get_by_label("Last hours").fill("24")
    _shot(page, backend, "savings-form")
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("#savings")).to_be_visible(timeout=300_000)  # the page refreshes itself
    savings = {t["name"] for t in _charted(page, "chart-savings")}
    assert {"HPA, target swept", "Foresight (bayesian)", "static peak"} <= savings, savings
    _charted(page, "chart-hours")
    expect(page.locator("#savings")).to_contain_text("replica-hours saved against static peak")
    _shot(page, backend, "savings")

    phone = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    phone.add_cookies(page.context.cookies())
    small = phone.new_page()
    small_errors = Errors(small)
    small.goto("/")
    _charted(small, "chart-w1")
    _shot(small, backend, "overview-phone")
    phone.close()

    assert errors.items + small_errors.items == []
