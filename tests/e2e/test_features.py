"""Beyond remix in a real browser: create with a reference image, a batch of three remixes,
the family view (saved as docs/img/lineage.png), the compare page playing two videos in step,
and toasts on a page other than the table without polling once nothing runs."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from PIL import Image
from playwright.sync_api import Page, Request, expect

from jobs.models import Provider, Video
from jobs.services.submit import submit_remix
from tests.conftest import Simulator, drive

from .conftest import ROOT, Poller, archived, log_in

# Playwright's sync API runs an event loop in this thread; nothing here is async (the e2e
# conftest sets the same, this keeps the file runnable alone).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")

pytestmark = pytest.mark.e2e

LINEAGE_PNG = ROOT / "docs" / "img" / "lineage.png"
SLOW = 30_000  # ms: a loaded CI box, SQLite and a single tracker thread add up


def wait_until(page: Page, expression: str, timeout: float = 15.0) -> None:
    """Poll a JS expression from Python: page.wait_for_function needs eval, which the CSP bans."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {expression}")
        page.wait_for_timeout(100)


def png(path: Path, width: int, height: int) -> Path:
    image = Image.new("RGB", (width, height), (30, 60, 120))
    image.paste((240, 200, 40), (width // 3, height // 3, width // 2, height // 2))
    image.save(path)
    return path


def test_create_a_video_from_a_reference_image(
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    poller: Poller,
    tmp_path: Path,
) -> None:
    log_in(page)
    page.locator("nav").get_by_role("link", name="New video").click()
    expect(page.get_by_role("heading", name="New video")).to_be_visible()

    # The menus offer only what the chosen model allows, from the catalog in data-catalog.
    sizes = page.get_by_label("Size").locator("option")
    page.get_by_label("Model").select_option("sora-2-pro")
    expect(sizes).to_have_count(4)
    page.get_by_label("Model").select_option("sora-2")
    expect(sizes).to_have_text(["1280x720", "720x1280"])

    # The browser reads the image's dimensions before uploading anything...
    reference = page.get_by_label("Reference image")
    reference.set_input_files(png(tmp_path / "square.png", 1024, 1024))
    expect(page.locator("#reference-check")).to_contain_text("The image is 1024×1024")
    # ...and the server refuses it in words if it is sent anyway.
    page.get_by_label("Prompt").fill("a lighthouse keeper's lamp, from this first frame")
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#id_input_reference ~ .error, .error").first).to_contain_text(
        "1024×1024 pixels"
    )
    assert Video.objects.count() == 0
    page_errors.clear()  # the browser logs that 400 answer as a console error: it is expected

    reference = page.get_by_label("Reference image")
    reference.set_input_files(png(tmp_path / "frame.png", 1280, 720))
    expect(page.locator("#reference-check")).to_contain_text("it matches the size")
    expect(page.get_by_label("Size")).to_have_value("1280x720")  # the image picked the size
    page.get_by_label("Seconds").select_option("8")
    expect(page.locator("#create-cost")).to_contain_text("$0.80")
    page.get_by_role("button", name="Create video").click()

    expect(page.get_by_role("heading", name="Videos")).to_be_visible()
    video = Video.objects.get()
    row = page.locator(f"#video-{video.pk}")
    expect(row).to_contain_text("Completed", timeout=SLOW)
    drive(lambda: Video.objects.get(pk=video.pk).playable)  # the poller archives it
    page.reload()
    expect(row.locator("img")).to_be_visible()  # the archived thumbnail
    video.refresh_from_db()
    assert video.input_reference.name is not None
    assert (video.size, video.seconds, video.input_reference.name[-4:]) == ("1280x720", "8", ".png")
    sent = list((simulator.data_dir / "references").iterdir())
    assert len(sent) == 1  # the provider got the image as the first frame
    assert page_errors == []


def test_a_batch_of_three_remixes_and_their_family(
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    poller: Poller,
) -> None:
    (source,) = archived(provider, simulator, 1)
    log_in(page)
    page.goto(source.get_absolute_url())
    page.get_by_role("link", name="Batch remix").click()
    prompts = page.get_by_label("Prompts, one per line")
    prompts.fill(
        "the same scene in sepia\nthe same scene as a watercolour\nthe same scene at night"
    )
    unit = 0.10 * int(source.seconds)
    expect(page.locator("#batch-cost")).to_have_text(f"3 jobs × ${unit:.2f} = ${3 * unit:.2f}")
    page.get_by_role("button", name="Submit batch").click()

    # The progress page follows the batch live (it polls itself) until all three are done.
    expect(page.locator("#batch-summary")).to_contain_text("3 of 3 completed", timeout=SLOW)
    expect(page.locator("#batch-status tbody tr")).to_have_count(3)
    expect(page.locator("#batch-status tbody img")).to_have_count(3, timeout=SLOW)
    batch_videos = list(Video.objects.filter(batch__isnull=False).order_by("pk"))
    assert [v.prompt for v in batch_videos] == [
        "the same scene in sepia",
        "the same scene as a watercolour",
        "the same scene at night",
    ]

    # One more generation, so the family has depth: a remix of the watercolour one.
    child = submit_remix(
        user=alice,
        source=batch_videos[1],
        prompt="the same scene as a watercolour, in winter",
        key=uuid.uuid4(),
    )
    drive(lambda: Video.objects.get(pk=child.pk).playable, timeout=SLOW / 1000)

    page.goto(f"/videos/{batch_videos[1].pk}/")
    page.get_by_role("link", name="Family tree").click()
    tree = page.locator(".tree")
    expect(tree.locator("li.node")).to_have_count(3)  # root → this one → its remix
    expect(
        tree.locator("li.current > .node-card ins", has_text="watercolour").first
    ).to_be_visible()
    expect(tree.locator("li.node img")).to_have_count(3)
    page.goto(f"/videos/{source.pk}/family/")
    expect(page.locator(".tree li.node")).to_have_count(5)
    expect(page.locator(".tree ins", has_text="in winter")).to_be_visible()
    LINEAGE_PNG.parent.mkdir(parents=True, exist_ok=True)
    page.locator("main").screenshot(path=str(LINEAGE_PNG))

    # Pick two in the tree and compare them.
    page.locator(f"#family-{batch_videos[0].pk} input[name=ids]").first.check()
    page.locator(f"#family-{batch_videos[2].pk} input[name=ids]").first.check()
    page.get_by_role("button", name="Compare the picked videos").click()
    expect(page.locator("video")).to_have_count(2)
    assert page_errors == []


def test_the_compare_page_plays_two_videos_in_step(
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
) -> None:
    first, second = archived(provider, simulator, 2)
    log_in(page)
    page.goto(f"/compare/?ids={first.pk},{second.pk}")
    players = page.locator("video")
    expect(players).to_have_count(2)
    wait_until(page, "Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 1)")
    state = "Array.from(document.querySelectorAll('video')).map(v => [v.paused, v.currentTime])"

    page.get_by_role("button", name="Play").click()
    wait_until(
        page,
        "Array.from(document.querySelectorAll('video')).every(v => !v.paused && v.currentTime > 1)",
    )
    (paused_a, t_a), (paused_b, t_b) = page.evaluate(state)
    assert not paused_a and not paused_b
    assert abs(t_a - t_b) < 0.3, (t_a, t_b)  # in step
    expect(page.locator("[data-compare]")).to_have_attribute("data-state", "playing")

    page.get_by_role("button", name="Pause").click()
    wait_until(page, "Array.from(document.querySelectorAll('video')).every(v => v.paused)")
    page.locator("[data-compare-seek]").fill("2.5")  # one seek bar moves both
    wait_until(
        page,
        "Array.from(document.querySelectorAll('video'))"
        ".every(v => Math.abs(v.currentTime - 2.5) < 0.1 && !v.seeking)",
    )
    expect(page.locator("[data-compare-time]")).to_contain_text("0:02 /")
    assert page.evaluate("Array.from(document.querySelectorAll('video')).map(v => v.error)") == [
        None,
        None,
    ]
    assert page_errors == []


def test_a_toast_on_another_page_and_no_requests_once_idle(
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    poller: Poller,
) -> None:
    (source,) = archived(provider, simulator, 1)
    simulator.configure(speed=40 * int(source.seconds) / 4 / 4)  # about four seconds to render
    notices: list[str] = []

    def record(request: Request) -> None:
        if "/notifications/" in request.url:
            notices.append(request.url)

    page.on("request", record)
    log_in(page)
    submit_remix(user=alice, source=source, prompt="sepia, please", key=uuid.uuid4())
    page.goto("/usage/")  # a page without a table: only the notices partial can tell us
    expect(page).to_have_title("(1) Usage · Remix dashboard")
    toast = page.locator("#toasts .toast.success")
    expect(toast).to_contain_text("“sepia, please” completed", timeout=SLOW)
    expect(page).to_have_title("Usage · Remix dashboard")
    assert notices, "the notices partial was never polled"
    settled = len(notices)
    page.wait_for_timeout(7_000)  # longer than a notices tick: an idle page sends nothing
    assert len(notices) == settled
    assert page_errors == []


def test_an_idle_tab_sends_no_requests(
    page: Page, page_errors: list[str], alice: User, provider: Provider
) -> None:
    sent: list[str] = []
    log_in(page)
    page.goto("/usage/")
    # The browser's own fetch of the favicon comes after the load; the app's would come later.
    page.wait_for_load_state("networkidle")
    page.on("request", lambda r: sent.append(r.url))
    page.wait_for_timeout(6_000)
    assert sent == []
    assert page_errors == []


def test_the_lineage_screenshot_is_saved() -> None:
    """Run after the batch test (file order): the docs show the family view."""
    if not LINEAGE_PNG.exists():
        pytest.skip("the batch test did not run")
    assert LINEAGE_PNG.stat().st_mtime > time.time() - 3600
