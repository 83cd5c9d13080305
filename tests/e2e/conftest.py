"""Browser fixtures: Debian's Chromium via Playwright, the app served as in production, and a
tracker thread that moves jobs along while the browser watches."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from jobs.models import Provider, Video
from tests.conftest import Simulator, drive
from tests.helpers import import_by_id, poll_due_videos

# Playwright's sync API keeps an asyncio loop running in the main thread, and Django refuses
# ORM calls from a thread with a running loop. Nothing here is async: the guard is a false alarm.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"

# Assertions wait for their state up to 15 s, like actions (context.set_default_timeout): on a
# busy machine (two xdist workers, a simulator and Chromium on two cores) an htmx swap can take
# longer than Playwright's default 5 s, and waiting longer costs nothing when it comes sooner.
expect.set_options(timeout=15_000)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"  # git-ignored; CI keeps it as a build artifact
CHROMIUM = Path("/usr/bin/chromium")  # Debian's browser: Playwright's own builds cannot be fetched
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root, where Chromium's sandbox will not start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class AppHandler(WSGIHandler):
    """The app as gunicorn serves it. LiveServerThread calls its static handler with the
    test file handlers wrapped around the app; this one leaves them out."""

    def __init__(self, _test_handlers: object) -> None:
        super().__init__()


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """pytest-django's live server, but answering exactly as the app does behind gunicorn.

    The stock fixture wraps the app in Django's test file handlers: /media/ would be served
    straight from MEDIA_ROOT (no login, no HTTP Range, so the player could not seek through
    jobs.views.media) and /static/ from the finders (which do not know the manifest's hashed
    names). A plain WSGIHandler leaves both to the app: WhiteNoise and the media view.
    """
    addr = (
        request.config.getvalue("liveserver")
        or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    server = LiveServer(addr, start=False)
    server.thread.static_handler = AppHandler
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per module: the event loop ends before other test files run."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make browser) to run e2e")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught exceptions and console errors (CSP violations show up here too)."""
    return []


@pytest.fixture
def page(browser: Browser, live_server: LiveServer, page_errors: list[str]) -> Iterator[Page]:
    """A fresh context (no cookies, no sessionStorage) per test; wide enough for the table."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    # Generous: the single-threaded tracker, SQLite and a loaded CI box can each add seconds.
    context.set_default_timeout(15_000)
    page = context.new_page()

    def console(message: ConsoleMessage) -> None:
        # The site has no favicon; Chromium's automatic request for one is not the app's doing.
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            page_errors.append(f"console: {message.text} ({message.location['url']})")

    page.on("console", console)
    page.on("pageerror", lambda exc: page_errors.append(f"pageerror: {exc}"))
    yield page
    context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class Poller:
    """`manage.py track_videos` in miniature: tracker steps on a thread until stopped."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="e2e-tracker", daemon=True)

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                if poll_due_videos(limit=50) == 0:
                    self.stopping.wait(0.05)  # idle only: busy rows are worked straight away
        except BaseException as exc:  # surfaced by stop(), so a crash fails the test loudly
            self.error = exc
        finally:
            connection.close()  # this thread's own connection; PostgreSQL would keep it open

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the tracker thread did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def poller(transactional_db: None) -> Iterator[Poller]:
    """Runs while the browser watches; depends on the DB so it stops before the flush."""
    poller = Poller()
    poller.thread.start()
    yield poller
    poller.stop()


PASSWORD = "alice-pass-123"  # the `alice` fixture's


def log_in(page: Page, username: str = "alice") -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Videos")).to_be_visible()


def archived(provider: Provider, simulator: Simulator, count: int) -> list[Video]:
    """Completed videos made elsewhere, imported and archived (as `make run` seeds them)."""
    videos = []
    for remote in simulator.seed(count):
        video, _ = import_by_id(provider=provider, video_id=remote["id"])
        videos.append(video)
    drive(lambda: all(Video.objects.get(pk=v.pk).playable for v in videos))
    for video in videos:
        video.refresh_from_db()
    return videos
