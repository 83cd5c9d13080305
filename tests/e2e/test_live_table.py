"""The live table in a real browser: a remix moves queued → in_progress → completed without a
reload, only the table polls (once per tick), polling stops when everything is final and while
the tab is hidden, a finished job raises a toast, and the archived video plays and seeks."""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from playwright.sync_api import Frame, Page, Request, Response, expect
from pytest_django.live_server_helper import LiveServer

from jobs.models import Provider, Video
from simulator.store import SECONDS_PER_CLIP_SECOND
from tests.conftest import Simulator

from .conftest import ROOT, Poller, archived, log_in

pytestmark = pytest.mark.e2e

TICK = settings.TABLE_POLL_SECONDS
RENDER_SECONDS = 8.0  # how long the remix takes at the simulator, queued time included
# Badge texts in the order a healthy job shows them; anything else (or going back) is a bug.
LIFECYCLE = ["Waiting to submit", "Queued", "In progress", "Completed"]


@dataclass
class Polls:
    """Every htmx request the page sends, with when it left and how it was answered."""

    sent: list[tuple[float, str, str]] = field(default_factory=list)  # (time, method, url)
    answers: list[int] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("request", self._request)
        page.on("response", self._response)

    def _request(self, request: Request) -> None:
        if is_htmx(request):
            self.sent.append((time.monotonic(), request.method, request.url))

    def _response(self, response: Response) -> None:
        if is_htmx(response.request):
            self.answers.append(response.status)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# Counted in the page, synchronously with the timer that sends each request, so reading the
# count right after stepping a stopped clock cannot race the network. An init script, so it
# sees every request of every document from the start; kept on <html> because Playwright reads
# attributes from its own JS world, where the fake clock does not reach.
COUNT_HTMX_REQUESTS = """(() => {
    let sent = 0, inflight = 0;
    const show = () => {
        document.documentElement.dataset.e2eSent = String(sent);
        document.documentElement.dataset.e2eInflight = String(inflight);
    };
    document.addEventListener("DOMContentLoaded", show);
    // When each left by the page's own clock: Python's event times jitter on a busy machine.
    window.e2eSentAt = [];
    document.addEventListener("htmx:beforeSend", () => {
        sent++; inflight++; show(); window.e2eSentAt.push(performance.now() / 1000);
    });
    // htmx re-fires this on an attached ancestor when the request's element was swapped out.
    document.addEventListener("htmx:afterRequest", () => { inflight--; show(); });
})();"""


def htmx_sent(page: Page) -> int:
    return int(page.locator("html").get_attribute("data-e2e-sent") or "0")


def quiet(page: Page) -> int:
    """Wait until no htmx request is in flight (hx-sync would drop a tick that met one), let
    the stopped clock run htmx's 20 ms settle step, and return the number sent so far."""
    expect(page.locator("html")).to_have_attribute("data-e2e-inflight", "0")
    page.clock.run_for(50)  # well short of a tick
    return htmx_sent(page)


@pytest.fixture
def source(provider: Provider, simulator: Simulator) -> Video:
    (video,) = archived(provider, simulator, 1)
    return video


def test_a_remix_goes_live_from_queued_to_completed_and_plays(
    live_server: LiveServer,
    page: Page,
    page_errors: list[str],
    alice: User,
    source: Video,
    simulator: Simulator,
    poller: Poller,
    artifacts: Path,
) -> None:
    # Slow enough to watch across several table ticks, yet quick: the remix keeps the seeded
    # source's length (4, 8 or 12 s), so pick the speed that makes any of them render in 8 s.
    simulator.configure(
        speed=SECONDS_PER_CLIP_SECOND * int(source.seconds) / RENDER_SECONDS,
        hang_seconds=1.5 * TICK,
    )
    # Real downloads take a while (and run later still, on the task worker): stall the remix's
    # first download so at least one table tick sees it completed with its files on the way.
    # The source is archived already, so nothing else downloads during this test.
    simulator.script_faults("timeout", method="GET", path="/content")
    polls = Polls()
    polls.watch(page)
    page.add_init_script(COUNT_HTMX_REQUESTS)
    videos: list[Response] = []
    page.on("response", lambda r: videos.append(r) if r.url.endswith("/video.mp4") else None)

    log_in(page)
    page.locator(f"#video-{source.pk}").get_by_role("link", name="Remix").click()
    page.get_by_role("textbox", name="Prompt").fill("the same scene, in sepia")
    page.get_by_role("button", name="Remix").click()
    page.wait_for_url(re.compile(r"/#video-\d+$"))
    remix = Video.objects.order_by("-pk").first()
    assert remix is not None and remix.source_id == source.pk
    assert page.url.endswith(f"/#video-{remix.pk}")
    landed_at = time.monotonic()

    # From here on the page must never navigate: every change arrives by swapping the table.
    navigations: list[str] = []

    def navigated(frame: Frame) -> None:
        if frame == page.main_frame:
            navigations.append(frame.url)

    page.on("framenavigated", navigated)
    # Record the row after every swap, in the page itself, so no state slips between samples;
    # the list also dies with a reload, which would show up as a missing global.
    page.evaluate(
        """(rowId) => {
            window.e2eRow = [];
            const record = () => {
                const row = document.getElementById(rowId);
                window.e2eRow.push([
                    row?.querySelector(".badge")?.textContent.trim() ?? null,
                    row?.querySelector("td.expiry span")?.textContent.trim() ?? null,
                ]);
            };
            record();
            document.addEventListener("htmx:afterSettle", record);
        }""",
        f"video-{remix.pk}",
    )
    row = page.locator(f"#video-{remix.pk}")
    badge = row.locator(".badge")
    table = page.locator("#video-table")
    expect(badge).to_have_text(re.compile("^(Waiting to submit|Queued)$"))
    expect(table).to_have_attribute("data-poll", "")

    expect(badge).to_have_text("In progress", timeout=20_000)
    expect(row.locator(".pct")).not_to_have_text("0%")
    expect(page).to_have_title(re.compile(r"^\(1\) "))  # my running jobs, for a background tab
    page.screenshot(path=artifacts / "live-table.png")
    docs_img = ROOT / "docs" / "img"
    docs_img.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifacts / "live-table.png", docs_img / "jobs-table.png")

    expect(badge).to_have_text("Completed", timeout=30_000)
    # My job finished: the table poll that first saw it also brought a toast, linking to it.
    toast = page.locator("#toasts li", has_text="completed")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("the same scene, in sepia")
    expect(toast.get_by_role("link")).to_have_attribute("href", f"/videos/{remix.pk}/")

    # The table keeps refreshing until the files are archived, then stops for good.
    expect(
        row.locator("td.expiry"), "the table stopped refreshing before the files were archived"
    ).to_have_text("Archived", timeout=20_000)
    expect(table).not_to_have_attribute("data-poll", re.compile(".*"))
    expect(page).not_to_have_title(re.compile(r"^\("))
    settled = htmx_sent(page)
    page.wait_for_timeout(2.25 * TICK * 1000)  # proving silence takes waiting past two ticks
    assert htmx_sent(page) == settled, "the table kept polling after every job was final"
    assert settled == len(polls.sent)  # and the network saw each of them, no more
    assert polls.answers[-1] == 200  # the last table it swapped, without data-poll

    assert not navigations, f"the page navigated instead of swapping the table: {navigations}"
    seen = [tuple(row) for row in page.evaluate("window.e2eRow")]
    badges = [b for i, (b, _) in enumerate(seen) if i == 0 or b != seen[i - 1][0]]
    assert badges[-1] == "Completed" and "In progress" in badges, seen
    assert [LIFECYCLE.index(b) for b in badges] == sorted(LIFECYCLE.index(b) for b in badges), (
        f"the badge went backwards: {seen}"
    )
    # It was seen completed with the download still running, and caught up on its own.
    assert ("Completed", "Archiving…") in seen and seen[-1] == ("Completed", "Archived"), seen

    # One request per tick for the whole page, to the table's own URL; never one per row.
    active_for = polls.sent[-1][0] - landed_at
    assert {(method, urlsplit(url).path) for _, method, url in polls.sent} == {("GET", "/")}
    assert len(polls.sent) <= active_for / TICK + 2, polls.sent
    sent_at: list[float] = page.evaluate("window.e2eSentAt")
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:], strict=False)]
    assert gaps and min(gaps) > TICK * 0.75, gaps  # one poller: never two ticks close together

    # The provider's links are gone now; the archived copy must still play and seek.
    remix.refresh_from_db()
    simulator.expire(remix.video_id or "")
    row.get_by_role("link", name="Open").click()
    player = page.locator("video#player")
    expect(player).to_be_visible()
    page.evaluate(
        """async () => {
            const v = document.querySelector("#player");
            v.muted = true;  // autoplay policy: muted media may start without a gesture
            await v.play();
        }"""
    )
    page.wait_for_function("() => document.querySelector('#player').currentTime > 0.3")
    position = page.evaluate(
        """() => new Promise((resolve) => {
            const v = document.querySelector("#player");
            v.pause();
            v.addEventListener("seeked", () => resolve(v.currentTime), { once: true });
            v.currentTime = 2.0;
        })"""
    )
    assert position == pytest.approx(2.0, abs=0.1)
    assert page.evaluate("document.querySelector('#player').error") is None
    expect(page.locator("#video-status")).not_to_have_attribute("data-poll", re.compile(".*"))
    page.screenshot(path=artifacts / "detail-player.png")

    assert any(r.status == 206 for r in videos), [(r.status, r.url) for r in videos]
    assert all(urlsplit(r.url).path == f"/media/{remix.video_file.name}" for r in videos)
    assert not page_errors


def test_a_hidden_tab_sends_no_polls_and_catches_up_when_shown(
    live_server: LiveServer,
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
) -> None:
    # Three rows in progress and nobody tracking them: the table polls for as long as we like.
    for n in range(3):
        Video.objects.create(
            provider=provider,
            owner=alice,
            video_id=f"video_e2e_{n}",
            submission=Video.Submission.SUBMITTED,
            status=Video.Status.IN_PROGRESS,
            progress=20 * (n + 1),
            prompt=f"rendering forever, take {n}",
            model="sora-2",
            size="720x1280",
            seconds="4",
        )
    polls = Polls()
    polls.watch(page)
    page.add_init_script(COUNT_HTMX_REQUESTS)
    # The page's timers run on a clock the test can stop and step: a tick happens exactly when
    # the test says so, which turns "one request per tick" and "none while hidden" into counts.
    page.clock.install()
    log_in(page)
    expect(page.locator("#video-table")).to_have_attribute("data-poll", "")
    page.clock.pause_at(time.time() + 1)

    for _ in range(3):
        before = quiet(page)
        page.clock.run_for(int(TICK * 1000))  # exactly one tick of the page's setInterval
        assert htmx_sent(page) == before + 1, "not one request per tick for three active rows"
    quiet(page)
    assert {(method, urlsplit(url).path) for _, method, url in polls.sent} == {("GET", "/")}
    assert set(polls.answers) <= {200, 304}  # 304: unchanged, the browser reuses its copy

    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
            Object.defineProperty(document, "visibilityState",
                { configurable: true, get: () => "hidden" });
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    hidden = quiet(page)
    page.clock.run_for(int(5 * TICK * 1000))
    assert htmx_sent(page) == hidden, "a hidden tab kept polling"

    # Shown again with the clock still stopped, so a request now can only be the catch-up.
    with page.expect_request(is_htmx, timeout=5_000):
        page.evaluate(
            """() => {
                delete document.hidden;  // back to the real (visible) getters on the prototype
                delete document.visibilityState;
                document.dispatchEvent(new Event("visibilitychange"));
            }"""
        )
    assert htmx_sent(page) == hidden + 1
    quiet(page)
    assert polls.answers[-1] in (200, 304)  # still active: the table keeps its data-poll
    page.clock.resume()
    assert not page_errors


# --- live updates that never disturb (issue 13, point 2) -------------------------------------

LONG_PROMPT = (
    "A lighthouse keeper climbs the spiral stairs at dusk, {n}, lighting the great lamp while "
    "gulls wheel past the salt-stained windows and the sea turns from grey to silver."
)


def rendering(provider: Provider, owner: User, count: int) -> list[Video]:
    """Rows in progress with nobody tracking them: the test moves their progress itself."""
    return [
        Video.objects.create(
            provider=provider,
            owner=owner,
            video_id=f"video_calm_{n}",
            submission=Video.Submission.SUBMITTED,
            status=Video.Status.IN_PROGRESS,
            progress=10,
            prompt=LONG_PROMPT.format(n=f"take {n}"),
            model="sora-2",
            size="720x1280",
            seconds="4",
        )
        for n in range(count)
    ]


def advance(page: Page, videos: list[Video], progress: int) -> None:
    """Move every row on at the database and wait until a tick has brought it to the page."""
    Video.objects.filter(pk__in=[v.pk for v in videos]).update(progress=progress)
    for video in videos:
        expect(page.locator(f"#video-{video.pk} .pct")).to_have_text(f"{progress}%")


# Marks what the reader has in hand, so that afterwards we can tell whether a tick replaced it:
# the open prompt's <details>, the focused element and the row as DOM nodes, plus a selection.
MARK_READER = """(rowId) => {
    const row = document.getElementById(rowId);
    window.e2e = { row, details: row.querySelector("details"), focused: document.activeElement };
    const text = row.querySelector(".prompt-text").firstChild;
    const range = document.createRange();
    range.setStart(text, 2);
    range.setEnd(text, 30);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    window.e2e.selected = getSelection().toString();
}"""
READER_UNDISTURBED = """(rowId) => ({
    sameRow: document.getElementById(rowId) === window.e2e.row,
    open: window.e2e.details.open && window.e2e.details.isConnected,
    focused: document.activeElement === window.e2e.focused,
    selected: getSelection().toString() === window.e2e.selected,
})"""


@pytest.mark.parametrize("width", [900, 1440])
def test_ticks_keep_the_open_prompt_scroll_focus_selection_and_column_widths(
    live_server: LiveServer,
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    width: int,
) -> None:
    videos = rendering(provider, alice, 3)
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page)
    table = page.locator("#video-table")
    expect(table).to_have_attribute("data-poll", "")
    reader = f"video-{videos[1].pk}"
    row = page.locator(f"#{reader}")
    row.locator("summary").click()  # opens the prompt, and focuses its summary
    expect(row.locator("details")).to_have_attribute("open", "")
    page.evaluate(MARK_READER, reader)
    scrollable = page.evaluate("(el) => el.scrollWidth > el.clientWidth", table.element_handle())
    assert scrollable == (width < 1300), "the table should scroll sideways only when narrow"
    if scrollable:
        table.evaluate("(el) => { el.scrollLeft = 300; }")
    scroll_left = table.evaluate("(el) => el.scrollLeft")
    widths = page.eval_on_selector_all(
        "table.videos th", "(ths) => ths.map((th) => th.getBoundingClientRect().width)"
    )

    for progress in (37, 64, 91):  # three changed ticks, each swapping in new percentages
        advance(page, videos, progress)
    assert page.evaluate(READER_UNDISTURBED, reader) == {
        "sameRow": True,
        "open": True,
        "focused": True,
        "selected": True,
    }
    assert table.evaluate("(el) => el.scrollLeft") == scroll_left
    assert (
        page.eval_on_selector_all(
            "table.videos th", "(ths) => ths.map((th) => th.getBoundingClientRect().width)"
        )
        == widths
    ), "a column changed width while the progress ticked"
    # The bar glides: it keeps its element (so a CSS transition runs) and shows the new value.
    fill = row.locator(".bar > span")
    expect(fill).to_have_attribute("style", re.compile(r"width: 91%"))
    assert float(fill.evaluate("(el) => parseFloat(getComputedStyle(el).transitionDuration)")) > 0
    expect(row.locator(".bar")).to_have_attribute("aria-valuenow", "91")
    assert not page_errors


def test_on_a_phone_the_jobs_are_cards_and_ticks_leave_them_alone(
    live_server: LiveServer,
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    artifacts: Path,
) -> None:
    videos = rendering(provider, alice, 3)
    for width in (360, 390):
        page.set_viewport_size({"width": width, "height": 800})
        log_in(page) if width == 360 else page.reload()
        expect(page.locator("#video-table")).to_have_attribute("data-poll", "")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, "sideways scroll"
        row = page.locator(f"#video-{videos[0].pk}")
        # A card: the row is a box of its own, its cells wrapped inside, each with its label.
        assert row.evaluate("(el) => getComputedStyle(el).display") == "flex"
        label = row.locator("td[data-label=Model]")
        assert label.evaluate("(el) => getComputedStyle(el, '::before').content") == '"Model "'

        box = row.bounding_box()
        assert box is not None and box["width"] <= width
        expect(page.locator("table.videos thead")).not_to_be_in_viewport()

    reader = f"video-{videos[2].pk}"
    row = page.locator(f"#{reader}")
    row.locator("summary").click()
    row.get_by_role("link", name="Open").focus()
    page.evaluate(MARK_READER, reader)
    page.evaluate("window.scrollTo(0, 120)")
    scroll_y = page.evaluate("window.scrollY")
    for progress in (40, 70):
        advance(page, videos, progress)
    assert page.evaluate(READER_UNDISTURBED, reader) == {
        "sameRow": True,
        "open": True,
        "focused": True,
        "selected": True,
    }
    assert page.evaluate("window.scrollY") == scroll_y
    page.screenshot(path=artifacts / "phone-table.png")
    assert not page_errors


def test_auto_refresh_can_be_paused_and_the_choice_is_remembered(
    live_server: LiveServer,
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
) -> None:
    videos = rendering(provider, alice, 2)
    page.add_init_script(COUNT_HTMX_REQUESTS)
    page.clock.install()
    log_in(page)
    switch = page.get_by_role("switch", name="Auto-refresh")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "false")
    page.clock.pause_at(time.time() + 1)
    before = quiet(page)
    Video.objects.filter(pk=videos[0].pk).update(progress=55)
    page.clock.run_for(int(5 * TICK * 1000))
    assert htmx_sent(page) == before, "a paused table kept polling"
    expect(page.locator(f"#video-{videos[0].pk} .pct")).to_have_text("10%")

    page.clock.resume()
    page.reload()  # remembered in this browser (localStorage)
    switch = page.get_by_role("switch", name="Auto-refresh")
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(page.locator(f"#video-{videos[0].pk} .pct")).to_have_text("55%")  # the reload's
    Video.objects.filter(pk=videos[0].pk).update(progress=60)
    with page.expect_request(is_htmx):  # resuming catches up at once
        switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(page.locator(f"#video-{videos[0].pk} .pct")).to_have_text("60%")
    assert not page_errors
