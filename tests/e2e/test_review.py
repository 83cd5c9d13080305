"""Team review in a real browser: a comment made at the moment the player was paused, its marker
under the player, the player seeking back to it from the comment (after a reload); an approval
changing the video's review state."""

from __future__ import annotations

import os
import time

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from jobs.models import Comment, Provider, Video
from tests.conftest import Simulator

from .conftest import archived, log_in

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")  # see tests/e2e/conftest.py

pytestmark = pytest.mark.e2e

PLAYER = "document.getElementById('player')"


def wait_until(page: Page, expression: str, timeout: float = 15.0) -> None:
    """Poll a JS expression from Python: page.wait_for_function needs eval, which the CSP bans."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {expression}")
        page.wait_for_timeout(50)


def player_at(page: Page, seconds: float) -> str:
    return f"Math.abs({PLAYER}.currentTime - {seconds}) < 0.05 && !{PLAYER}.seeking"


def test_a_comment_at_a_moment_and_the_player_seeking_back_to_it(
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
) -> None:
    (video,) = archived(provider, simulator, 1)
    log_in(page)
    page.goto(video.get_absolute_url())
    wait_until(page, f"{PLAYER}.readyState >= 1")

    # Play (muted: headless Chromium lets a muted video start without a click), then start
    # writing: that pauses the player, and the form takes the paused moment.
    page.evaluate(f"{PLAYER}.muted = true; {PLAYER}.play()")
    wait_until(page, f"!{PLAYER}.paused && {PLAYER}.currentTime > 1")
    page.get_by_label("Comment at the player's moment").click()
    wait_until(page, f"{PLAYER}.paused")
    moment = page.evaluate(f"{PLAYER}.currentTime")
    assert 1 < moment < float(video.seconds)
    expect(page.get_by_label("At second")).to_have_value(str(round(moment * 1000) / 1000))

    page.get_by_label("Comment at the player's moment").fill("The kite turns too early @bob")
    page.get_by_role("button", name="Comment", exact=True).click()
    comment = page.locator("article.comment")
    expect(comment).to_contain_text("The kite turns too early")
    saved = Comment.objects.get()
    assert saved.timecode is not None and abs(saved.timecode - moment) < 0.01
    expect(page.locator("#comment-markers .marker")).to_have_count(1)

    # After a reload (player back at 0), clicking the comment seeks to its moment...
    page.reload()
    wait_until(page, f"{PLAYER}.readyState >= 1 && {PLAYER}.currentTime === 0")
    expect(page.locator("#comment-markers .marker")).to_have_count(1)
    page.locator("article.comment .comment-body").click()
    wait_until(page, player_at(page, saved.timecode))
    # ...and so does its marker under the player, from anywhere else.
    page.evaluate(f"{PLAYER}.currentTime = 0.2")
    wait_until(page, player_at(page, 0.2))
    page.locator("#comment-markers .marker").click()
    wait_until(page, player_at(page, saved.timecode))
    assert page_errors == []


def test_an_approval_changes_the_review_state(
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
) -> None:
    (video,) = archived(provider, simulator, 1)  # imported: nobody owns it, alice may review
    log_in(page)
    page.goto(video.get_absolute_url())
    badge = page.locator("#review-state-badge")
    expect(badge).to_have_text("Not in review")

    page.get_by_role("button", name="Approve").click()
    expect(badge).to_have_text("Approved")
    expect(page.locator("#review-state")).to_contain_text("Your verdict: Approved.")
    assert Video.objects.get(pk=video.pk).review_state == "approved"

    page.goto("/?review=approved")
    expect(page.locator(f"#video-{video.pk} .badge.review")).to_have_text("Approved")
    assert page_errors == []
