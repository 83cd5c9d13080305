"""axe-core over every app page at a phone's width and a desktop's: no violations of any
impact (WCAG A/AA and axe's best practices: contrast, landmarks, labels, table headers...).

axe-core comes from npm (tests/e2e/package.json, installed by `make test`). It is injected
as a script tag, which the site's CSP forbids: these contexts bypass the CSP, nothing else."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, BrowserContext, Page
from pytest_django.live_server_helper import LiveServer

from jobs.models import Provider
from tests.conftest import Simulator

from .conftest import log_in
from .pages import app_pages, lock_out

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")

pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
VIEWPORTS = [pytest.param(PHONE, id="390x844"), pytest.param(DESKTOP, id="1440x900")]

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary.split("\\n")[1]),
  }));
}"""


@pytest.fixture(scope="module", autouse=True)
def axe_installed() -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make axe` (npm ci --prefix tests/e2e) installs it")


def context_for(browser: Browser, live_server: LiveServer, viewport: Any) -> BrowserContext:
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    context.set_default_timeout(30_000)  # a loaded box: many pages in one test
    return context


def violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return found


def report(found: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for where, items in found.items():
        for v in items:
            lines.append(f"{where}: {v['id']} ({v['impact']}): {v['help']}")
            lines += [f"    {target}" for target in v["targets"][:8]]
    return "\n".join(lines)


@pytest.fixture
def contexts(browser: Browser, live_server: LiveServer) -> Iterator[list[BrowserContext]]:
    made: list[BrowserContext] = []
    yield made
    for context in made:
        context.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_every_app_page_has_no_axe_violations(
    viewport: Any,
    browser: Browser,
    live_server: LiveServer,
    contexts: list[BrowserContext],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
) -> None:
    pages = app_pages(alice, provider, simulator)
    found: dict[str, list[dict[str, Any]]] = {}
    visitor = context_for(browser, live_server, viewport)
    member = context_for(browser, live_server, viewport)
    contexts += [visitor, member]
    anonymous, logged_in = visitor.new_page(), member.new_page()
    log_in(logged_in)
    for app_page in pages:
        page = logged_in if app_page.logged_in else anonymous
        page.goto(app_page.path)
        page.wait_for_load_state("networkidle")
        if items := violations(page):
            found[f"{app_page.name} ({app_page.path})"] = items
    # Last: locking the address out stops every log-in from it.
    lock_out(anonymous)
    if items := violations(anonymous):
        found["locked out"] = items
    assert not found, "axe-core found violations:\n" + report(found)
