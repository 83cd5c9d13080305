"""Actions and money in a real browser: retry once with an edited prompt (the button becomes
"Retried as #N"), retry all failed in a batch, cancel a waiting job, delete a video with Usage
unchanged, and the warning for a remix prompt left unchanged."""

from __future__ import annotations

import os
import re
import uuid

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from jobs.models import Provider, Video
from jobs.services.submit import submit_batch, submit_remix
from tests.conftest import Simulator

from .conftest import Poller, archived, log_in

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")

pytestmark = pytest.mark.e2e

SLOW = 30_000  # ms: the single tracker thread and a loaded box add up


def test_retry_once_with_an_edited_prompt(
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    poller: Poller,
) -> None:
    (source,) = archived(provider, simulator, 1)
    simulator.configure(fail_rate=1)
    failed = submit_remix(user=alice, source=source, prompt="a doomed take", key=uuid.uuid4())
    log_in(page)
    page.goto(failed.get_absolute_url())
    expect(page.locator("#video-status h1 .badge")).to_have_text("Failed", timeout=SLOW)

    simulator.configure(fail_rate=0)
    page.get_by_role("link", name="Edit the prompt and retry").click()
    prompt = page.get_by_label("Prompt")
    expect(prompt).to_have_value("a doomed take")
    prompt.fill("a kinder take")
    page.get_by_role("button", name="Retry as a new job").click()
    retry = Video.objects.get(retry_of=failed)
    assert retry.prompt == "a kinder take"
    expect(page).to_have_url(re.compile(rf"/videos/{retry.pk}/$"))

    page.goto(failed.get_absolute_url())
    link = page.get_by_role("link", name=f"Retried as #{retry.pk}")
    expect(link).to_be_visible()
    expect(page.get_by_role("button", name="Retry as a new job")).to_have_count(0)
    link.click()
    expect(page.locator("#video-status h1 .badge")).to_have_text("Completed", timeout=SLOW)
    assert Video.objects.filter(retry_of=failed).count() == 1
    assert page_errors == []


def test_retry_all_failed_in_a_batch(
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    poller: Poller,
) -> None:
    (source,) = archived(provider, simulator, 1)
    simulator.configure(fail_rate=1)
    batch = submit_batch(user=alice, source=source, prompts=["one", "two"], key=uuid.uuid4())
    log_in(page)
    page.goto(batch.get_absolute_url())
    summary = page.locator("#batch-summary")
    expect(summary).to_contain_text("2 failed", timeout=SLOW)

    simulator.configure(fail_rate=0)
    page.get_by_role("button", name="Retry all failed (2)").click()
    expect(summary).to_contain_text("2 of 2 completed", timeout=SLOW)
    expect(summary).not_to_contain_text("failed")
    expect(page.get_by_role("link", name=re.compile(r"^Retried as #\d+$"))).to_have_count(2)
    expect(page.get_by_role("button", name=re.compile("Retry"))).to_have_count(0)
    assert Video.objects.filter(batch=batch, retry_of__isnull=False).count() == 2
    assert page_errors == []


def test_cancel_a_waiting_job(
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
    settings,
) -> None:
    (source,) = archived(provider, simulator, 1)
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    created = simulator.stats()["jobs_created"]
    waiting = submit_remix(user=alice, source=source, prompt="not yet", key=uuid.uuid4())
    log_in(page)
    page.goto(waiting.get_absolute_url())
    expect(page.locator("#video-status h1 .badge")).to_have_text("Waiting to submit")
    page.get_by_role("button", name="Cancel this job").click()
    expect(page.locator("#toasts")).to_contain_text(
        f"Cancelled #{waiting.pk} before it was sent: $0.00 charged."
    )
    expect(page.locator("#video-status h1 .badge")).to_have_text("Cancelled")
    expect(page.get_by_text("$0 — cancelled before it started")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel this job")).to_have_count(0)
    assert simulator.stats()["jobs_created"] == created  # never sent
    assert page_errors == []


def test_deleting_a_video_leaves_usage_unchanged(
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    poller: Poller,
) -> None:
    (source,) = archived(provider, simulator, 1)
    mine = submit_remix(user=alice, source=source, prompt="mine, then gone", key=uuid.uuid4())
    log_in(page)
    page.goto(mine.get_absolute_url())
    expect(page.locator("video#player")).to_be_visible(timeout=SLOW)
    page.goto("/usage/")
    total = page.locator("#usage-users tfoot")
    cost = f"${mine.cost_estimate:.2f}"
    expect(total).to_contain_text(cost)
    before = total.text_content()

    page.goto(mine.get_absolute_url())
    page.get_by_role("link", name="Delete", exact=True).click()
    page.get_by_role("button", name="Delete for good").click()
    expect(page.locator("#toasts")).to_contain_text("Deleted")
    assert not Video.objects.filter(pk=mine.pk).exists()

    page.goto("/usage/")
    expect(page.locator("#usage-users tfoot")).to_have_text(before or "")
    expect(page.locator("#usage-users tbody")).to_contain_text("alice")
    expect(page.locator("#usage-users tbody")).to_contain_text(cost)
    assert page_errors == []


def test_an_unchanged_remix_prompt_is_warned_about(
    page: Page,
    page_errors: list[str],
    alice: User,
    provider: Provider,
    simulator: Simulator,
    transactional_db: None,
    settings,
) -> None:
    (source,) = archived(provider, simulator, 1)
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    log_in(page)
    page.goto(f"/videos/{source.pk}/remix/")
    warning = page.locator("#unchanged-warning")
    prompt = page.get_by_label("Prompt", exact=True)
    expect(warning).to_be_visible()  # pre-filled with the source's prompt
    prompt.press("End")
    prompt.press_sequentially(", at night")
    expect(warning).to_be_hidden()
    prompt.fill(source.prompt)
    expect(warning).to_be_visible()

    # Submitted unchanged anyway, without the box ticked: the server asks first.
    page.get_by_role("button", name="Remix").click()
    expect(page.get_by_role("alert")).to_contain_text("The prompt is the same as the source")
    assert not Video.objects.filter(source=source).exists()
    page.get_by_label("Submit anyway: I want the same prompt again").check()
    page.get_by_role("button", name="Remix").click()
    expect(page.get_by_role("heading", name="Videos")).to_be_visible()
    assert Video.objects.filter(source=source, prompt=source.prompt).count() == 1
    # The refused submit is answered 400 (as every form that did not go through), which
    # Chromium logs; anything else would be an error.
    assert [e for e in page_errors if "400 (Bad Request)" not in e] == []
