"""Polls in a real browser (jobs/table_version.py): unchanged ticks are 304s the page ignores,
a changed tick brings only the changed row and it is swapped into place (the same element,
the reader's state kept), a new job brings the whole table, and my finished job a toast."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, Response, expect
from pytest_django.live_server_helper import LiveServer

from jobs.models import Provider, Video

from .conftest import log_in

pytestmark = pytest.mark.e2e


def in_progress(provider: Provider, owner: User, n: int) -> Video:
    return Video.objects.create(
        provider=provider,
        owner=owner,
        video_id=f"video_tick_{n}_{timezone.now().timestamp()}",
        submission=Video.Submission.SUBMITTED,
        status=Video.Status.IN_PROGRESS,
        progress=10,
        prompt=f"a harbour at dawn, take {n}",
        model="sora-2",
        size="720x1280",
        seconds="4",
    )


def test_ticks_are_304s_until_a_row_changes_and_then_bring_only_that_row(
    live_server: LiveServer,
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
) -> None:
    videos = [in_progress(provider, alice, n) for n in range(3)]
    answers: list[Response] = []
    page.on(
        "response", lambda r: answers.append(r) if r.request.headers.get("hx-request") else None
    )
    log_in(page)
    table = page.locator("#video-table")
    expect(table).to_have_attribute("data-version", re.compile(r"p1\."))
    page.evaluate(
        "(id) => { window.e2eRow = document.getElementById(id); }", f"video-{videos[1].pk}"
    )

    with page.expect_response(lambda r: r.status == 304, timeout=10_000):
        pass  # an unchanged tick: nothing to render, nothing to swap
    Video.objects.filter(pk=videos[1].pk).update(progress=63)
    row = page.locator(f"#video-{videos[1].pk}")
    expect(row.locator(".pct")).to_have_text("63%")
    changed = [r for r in answers if r.status == 200]
    assert changed, [r.status for r in answers]
    tick = changed[-1]
    assert tick.headers.get("hx-reswap") == "none"
    body = tick.text()
    assert f'id="video-{videos[1].pk}"' in body and f'id="video-{videos[0].pk}"' not in body
    assert page.evaluate(
        "(id) => document.getElementById(id) === window.e2eRow", f"video-{videos[1].pk}"
    )
    # The page took the new version, so the next unchanged tick is a 304 again.
    with page.expect_response(lambda r: r.status == 304, timeout=10_000):
        pass

    newer = in_progress(provider, alice, 9)  # a new job: the rows on the page are not the same
    expect(page.locator(f"#video-{newer.pk}")).to_be_visible()

    Video.objects.filter(pk=videos[0].pk).update(
        status="completed", progress=100, asset_state="archived", notify_pending=True
    )
    toast = page.locator("#toasts li", has_text="completed")
    expect(toast).to_contain_text("take 0")
    expect(page).to_have_title(re.compile(r"^\(3\) "))
    assert not page_errors
