"""Find and sort in a real browser (issue 13, point 9): search by #number, bare number and
provider id; filters that apply as they change, with the address bar following (no reload);
header clicks that sort and then reverse; and a copy-prompt button that copies."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from jobs.models import Provider, Video

from .conftest import log_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def library(provider: Provider, alice: User, bob: User) -> list[Video]:
    """Finished jobs (nothing polls): models and statuses to sort, ids and prompts to find."""
    rows = [
        ("a fox in the snow", "sora-2", "completed", alice),
        ("harbour lights at night", "sora-2-pro", "failed", bob),
        ("a kite over the dunes", "sora-2", "completed", bob),
        ("tea steam in morning sun", "sora-2-pro", "completed", alice),
    ]
    return [
        Video.objects.create(
            provider=provider,
            owner=owner,
            video_id=f"video_findme{n}abc",
            submission=Video.Submission.SUBMITTED,
            status=status,
            progress=100 if status == "completed" else 30,
            asset_state="none",
            prompt=prompt,
            model=model,
            size="720x1280",
            seconds="4",
        )
        for n, (prompt, model, status, owner) in enumerate(rows)
    ]


def shown(page: Page) -> list[int]:
    ids = page.eval_on_selector_all("table.videos tbody tr[id]", "(rows) => rows.map(r => r.id)")
    return [int(i.removeprefix("video-")) for i in ids]


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


@pytest.mark.parametrize("width", [390, 1440])
def test_search_by_number_and_provider_id_as_you_type(
    live_server: LiveServer,
    page: Page,
    page_errors: list[str],
    library: list[Video],
    width: int,
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page)
    page.evaluate("window.e2eSamePage = true")  # gone if anything reloads the page
    search = page.get_by_role("searchbox")
    target = library[2]
    expect(page.locator("table.videos tbody tr[id]")).to_have_count(4)

    search.fill(f"#{target.pk}")  # no Enter, no Apply: it applies as you type
    expect(page.locator("table.videos tbody tr[id]")).to_have_count(1)
    assert shown(page) == [target.pk]
    expect(page).to_have_url(f"{live_server.url}/?q=%23{target.pk}")

    search.fill(str(target.pk))  # a bare number finds the video (and prompts holding it)
    expect(page.locator(f"#video-{target.pk}")).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/?q={target.pk}")

    search.fill((library[1].video_id or "")[:14])  # a provider id, even cut short
    expect(page.locator(f"#video-{library[1].pk}")).to_be_visible()
    expect(page.locator("table.videos tbody tr[id]")).to_have_count(1)

    search.fill("no such thing anywhere")
    expect(page.locator("td.empty")).to_have_text("No videos yet match these filters.")
    search.fill("")
    expect(page.locator("table.videos tbody tr[id]")).to_have_count(4)
    expect(page).to_have_url(f"{live_server.url}/")

    # A menu applies as soon as it changes, too.
    page.get_by_label("Status").select_option("failed")
    expect(page.locator("table.videos tbody tr[id]")).to_have_count(1)
    assert query(page) == {"status": ["failed"]}
    assert page.evaluate("window.e2eSamePage") is True, "the page reloaded"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert not page_errors


def test_a_header_click_sorts_and_a_second_reverses(
    live_server: LiveServer,
    page: Page,
    page_errors: list[str],
    library: list[Video],
) -> None:
    log_in(page)
    page.evaluate("window.e2eSamePage = true")
    by_model = sorted(library, key=lambda v: (v.model, -v.requested_at.timestamp(), -v.pk))
    header = page.get_by_role("columnheader", name="Model")
    expect(header).to_have_attribute("aria-sort", "none")

    header.get_by_role("link").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert shown(page) == [v.pk for v in by_model]
    assert query(page) == {"sort": ["model"]}
    expect(page.get_by_label("Sort")).to_have_value("model")  # the menu says the same

    header.get_by_role("link").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    assert shown(page) == [v.pk for v in reversed(by_model)]
    assert query(page) == {"sort": ["-model"]}

    status = page.get_by_role("columnheader", name="Status")
    status.get_by_role("link").click()
    expect(status).to_have_attribute("aria-sort", "ascending")
    expect(header).to_have_attribute("aria-sort", "none")
    statuses = page.eval_on_selector_all(
        "table.videos tbody tr[id]", "(rows) => rows.map(r => r.dataset.status)"
    )
    assert statuses == sorted(statuses)
    assert page.evaluate("window.e2eSamePage") is True, "the page reloaded"

    page.reload()  # the address bar holds the sort, so a reload (or a shared link) keeps it
    expect(page.get_by_role("columnheader", name="Status")).to_have_attribute(
        "aria-sort", "ascending"
    )
    assert not page_errors


def test_the_copy_button_copies_the_prompt(
    live_server: LiveServer,
    page: Page,
    page_errors: list[str],
    library: list[Video],
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page)
    row = page.locator(f"#video-{library[3].pk}")
    row.locator("summary").click()
    button = row.get_by_role("button", name="Copy prompt")
    button.click()
    expect(row.get_by_role("button", name="Copied")).to_be_visible()
    expect(page.locator("#toasts")).to_contain_text("Prompt copied")
    assert page.evaluate("navigator.clipboard.readText()") == library[3].prompt
    expect(button).to_have_text("Copy prompt")  # and back, ready for the next one
    assert not page_errors
