"""Refusals in words, inside the site's layout (403, 404, 500, a stale form, a locked log-in),
the favicon, download names, the detail page's labels, dates and failed progress bar, and
portrait videos on the compare page fitting the window, at 390 and 1440 px."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.views.defaults import server_error
from playwright.sync_api import Browser, BrowserContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from jobs.models import Provider, Video
from jobs.services.submit import submit_batch
from tests.conftest import Simulator, drive

from .conftest import PASSWORD, archived, log_in
from .pages import failed_remix

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")

pytestmark = pytest.mark.e2e

WIDTHS = [pytest.param((390, 844), id="390"), pytest.param((1440, 900), id="1440")]


@pytest.fixture
def sized(browser: Browser, live_server: LiveServer) -> Iterator[Any]:
    made: list[BrowserContext] = []

    def new(size: tuple[int, int]) -> Page:
        context = browser.new_context(
            base_url=live_server.url,
            viewport={"width": size[0], "height": size[1]},
            accept_downloads=True,
            timezone_id="Europe/Paris",
        )
        context.set_default_timeout(15_000)
        made.append(context)
        return context.new_page()

    yield new
    for context in made:
        context.close()


def in_layout(page: Page) -> None:
    """The site's own page: its bar and menu, not a bare "403 Forbidden" or Django's."""
    expect(page.locator("header.topbar .brand")).to_have_text("Remix dashboard")
    expect(page.locator("link[rel=icon]")).to_have_count(1)


@pytest.mark.parametrize("size", WIDTHS)
def test_a_missing_video_and_an_unknown_page_get_the_sites_404(
    size: tuple[int, int], sized: Any, alice: User, provider: Provider, transactional_db: None
) -> None:
    page = sized(size)
    log_in(page)
    response = page.goto("/videos/999999/")
    assert response is not None and response.status == 404
    in_layout(page)
    expect(page.get_by_role("heading", name="Not found (404)")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("There is no video #999999 in this dashboard.")
    expect(page.locator("nav#site-nav")).to_be_attached()  # logged in: the menu (folded on phones)
    page.get_by_role("link", name="Back to all videos").click()
    expect(page.get_by_role("heading", name="Videos")).to_be_visible()

    response = page.goto("/batches/424242/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("alert")).to_have_text("There is no batch #424242 in this dashboard.")
    response = page.goto("/no/such/page/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("alert")).to_contain_text("There is no page at /no/such/page/")


@pytest.mark.parametrize("size", WIDTHS)
def test_someone_elses_video_gets_a_403_that_says_why(
    size: tuple[int, int],
    sized: Any,
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
) -> None:
    (imported,) = archived(provider, simulator, 1)  # imported: nobody's, so staff only
    page = sized(size)
    log_in(page)
    response = page.goto(f"/videos/{imported.pk}/delete/")
    assert response is not None and response.status == 403
    in_layout(page)
    expect(page.get_by_role("heading", name="Not allowed (403)")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(
        "Only the person who submitted a video, or a member of staff, can change or delete it."
    )
    expect(page.get_by_text("You are logged in as alice")).to_be_visible()
    assert Video.objects.filter(pk=imported.pk).exists()


def test_a_form_without_its_security_token_is_refused_in_words(
    sized: Any, alice: User, transactional_db: None
) -> None:
    page = sized((1440, 900))
    page.goto("/login/")
    page.evaluate("document.querySelector('[name=csrfmiddlewaretoken]').value = 'stale'")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Log in").click()
    assert posted.value.status == 403
    in_layout(page)
    expect(page.get_by_role("heading", name="The form could not be accepted (403)")).to_be_visible()
    expect(page.get_by_text("reload the page and send the form again")).to_be_visible()


def test_the_500_page_is_in_the_layout_and_needs_nothing_from_the_request(db: None) -> None:
    """Django renders 500.html with an empty context: no user, no request, maybe no database."""
    response = server_error(RequestFactory().get("/boom/"))
    body = response.content.decode()
    assert response.status_code == 500
    assert '<header class="topbar">' in body and "Something went wrong (500)" in body
    assert "did not expect" in body and "Log out" not in body


@pytest.mark.parametrize("size", WIDTHS)
def test_a_locked_log_in_says_so_and_for_how_long(
    size: tuple[int, int], sized: Any, alice: User, transactional_db: None
) -> None:
    page = sized(size)
    answers: list[int] = []
    page.on("response", lambda r: answers.append(r.status) if r.request.method == "POST" else None)
    for _ in range(4):
        page.goto("/login/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("wrong-password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_text("Please enter a correct username and password")).to_be_visible()
    # The fifth failure locks it; then even the right password is refused, in words.
    for password in ("wrong-password", PASSWORD):
        page.goto("/login/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Log-in locked")).to_be_visible()
        in_layout(page)
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("Too many failed log-ins for “alice”")
        expect(alert).to_contain_text("locked for 15 minutes")
        expect(page.get_by_text("Please enter a correct username")).to_have_count(0)
    assert answers[-2:] == [429, 429]


def test_the_favicon_is_served_and_linked(sized: Any, alice: User, transactional_db: None) -> None:
    page = sized((1440, 900))
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto("/login/")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href and href.endswith(".svg")
    icon = page.request.get(href)
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    legacy = page.request.get("/favicon.ico")  # what browsers ask for on the admin's pages
    assert legacy.ok and legacy.headers["content-type"].startswith("image/svg+xml")
    assert missing == []


def test_downloads_are_named_after_the_video_and_its_prompt(
    sized: Any, alice: User, provider: Provider, simulator: Simulator, transactional_db: None
) -> None:
    first, second = archived(provider, simulator, 2)
    page = sized((1440, 900))
    log_in(page)
    names = []
    for video in (first, second):
        page.goto(video.get_absolute_url())
        with page.expect_download() as download:
            page.get_by_role("link", name="Download video").click()
        names.append(download.value.suggested_filename)
        with page.expect_download() as download:
            page.get_by_role("link", name="Thumbnail").click()
        thumbnail = download.value.suggested_filename
        assert re.fullmatch(rf"{video.pk}-[a-z0-9-]+-thumbnail\.\w+", thumbnail), thumbnail
    slug = re.sub(r"[^a-z0-9]+", "-", first.prompt.lower()).strip("-")[:60].strip("-")
    assert names[0] == f"{first.pk}-{slug}.mp4"
    assert names[1].startswith(f"{second.pk}-") and names[1] != names[0]
    # The file itself says so too, for "Save video as…" and the table's download link.
    media = page.request.get(page.locator("video#player").get_attribute("src") or "")
    assert media.headers["content-disposition"] == f'inline; filename="{names[1]}"'


@pytest.mark.parametrize("size", WIDTHS)
def test_the_detail_page_labels_dates_and_a_failed_jobs_bar(
    size: tuple[int, int],
    sized: Any,
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
) -> None:
    (source,) = archived(provider, simulator, 1)
    failed = failed_remix(alice, source, simulator)
    page = sized(size)
    log_in(page)
    page.goto(source.get_absolute_url())
    fields = page.locator("dl.fields")
    for label, api in (("Status", "status"), ("Created", "created_at"), ("Length", "seconds")):
        expect(fields.locator("dt", has_text=label).locator("code.api")).to_have_text(api)
    created = fields.locator("dt:has(code.api:text-is('created_at')) + dd time")
    stamp = created.get_attribute("datetime")
    assert stamp and source.created_at and stamp == source.created_at.isoformat()
    # One format everywhere on the page, in the viewer's zone (Paris here), and how long ago.
    expect(created).to_contain_text(re.compile(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d:\d\d"))
    expect(created).to_contain_text(re.compile(r"GMT\+[12]|CET|CEST"))
    expect(fields.locator("dt:has(code.api:text-is('created_at')) + dd .ago")).to_have_text(
        re.compile(r"\((\d+ \w+ ago|just now)\)")
    )
    history = page.locator("table.history time[data-when]")
    expect(history.first).to_contain_text(re.compile(r"\d{4}, \d\d:\d\d:\d\d"))

    page.goto(failed.get_absolute_url())
    bar = page.locator("#video-status progress")
    expect(bar).to_have_class(re.compile("stopped"))
    expect(bar).to_have_attribute("value", str(failed.progress))
    assert bar.evaluate("el => getComputedStyle(el).accentColor") == "rgb(185, 28, 28)"  # --bad
    expect(page.get_by_text(f"It stopped at {failed.progress}%.")).to_be_visible()


@pytest.mark.parametrize("size", WIDTHS)
def test_portrait_videos_fit_the_compare_page_with_their_labels(
    size: tuple[int, int],
    sized: Any,
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
) -> None:
    first, second = archived(provider, simulator, 2)  # 720x1280: portrait
    assert first.size == "720x1280"
    page = sized(size)
    log_in(page)
    page.goto(f"/compare/?ids={first.pk},{second.pk}")
    expect(page.locator("video")).to_have_count(2)
    for figure in page.locator("figure.compare-item").all():
        video = figure.locator("video")
        # Its size is known once the metadata is in (wait_for_function needs eval: the CSP).
        for _ in range(150):
            if video.evaluate("v => v.readyState >= 1"):
                break
            page.wait_for_timeout(100)
        figure.scroll_into_view_if_needed()
        box = figure.bounding_box()
        clip = video.bounding_box()
        assert box and clip
        assert clip["height"] > clip["width"], "still portrait, not stretched"
        assert box["height"] <= size[1], f"the clip and its caption do not fit: {box}"
        assert clip["x"] >= 0 and clip["x"] + clip["width"] <= size[0]
        for part in ("a", ".badge", "dl.fields", ".diff"):
            expect(figure.locator("figcaption").locator(part).first).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= size[0]


def test_table_rows_line_up(
    sized: Any,
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
) -> None:
    """Every cell of a row ends on the same line, so the row borders are straight: the jobs
    table and a batch's (whose actions cell was a flex box)."""
    source, _ = archived(provider, simulator, 2)
    batch = submit_batch(user=alice, source=source, prompts=["in sepia"], key=uuid.uuid4())
    drive(lambda: all(v.playable for v in Video.objects.filter(batch=batch)), timeout=30)
    page = sized((1440, 900))  # phones show the list as cards, without row borders
    log_in(page)
    for path, count in (("/?view=table", 3), (f"/batches/{batch.pk}/", 1)):
        page.goto(path)
        rows = page.locator("main table tbody tr")
        expect(rows).to_have_count(count)
        for row in rows.all():
            bottoms = row.evaluate(
                "tr => [...tr.children].map(td => Math.round(td.getBoundingClientRect().bottom))"
            )
            assert len(set(bottoms)) == 1, (path, bottoms)
