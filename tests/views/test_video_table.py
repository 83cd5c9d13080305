"""The jobs table: full page vs htmx partial, polling on and off, filters, permissions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from jobs.models import Provider, Video
from tests.helpers import import_by_id

HX = {"HX-Request": "true"}


def make(
    provider: Provider,
    owner: User | None,
    status: str = "completed",
    prompt: str = "a prompt",
    **kw: Any,
) -> Video:
    return Video.objects.create(
        provider=provider,
        owner=owner,
        video_id=f"video_{uuid.uuid4().hex}",
        status=status,
        submission=Video.Submission.SUBMITTED,
        prompt=prompt,
        model=kw.pop("model", "sora-2"),
        size="720x1280",
        seconds="4",
        progress=100 if status == "completed" else 10,
        **kw,
    )


def test_anonymous_users_are_sent_to_log_in(client, db) -> None:
    for url in ["/", "/videos/1/", "/videos/1/remix/", "/media/archive/1/video.mp4"]:
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/login/"), url


def test_the_full_page_renders_with_the_table(alice_client, provider, alice) -> None:
    make(provider, alice, prompt="a red balloon")
    r = alice_client.get("/")
    assert r.status_code == 200
    assert b"<html" in r.content and b'id="video-table"' in r.content
    assert b"a red balloon" in r.content


def test_it_returns_the_bare_table_without_a_poll_when_idle(alice_client, provider, alice) -> None:
    make(provider, alice, status="completed", asset_state="archived")
    make(provider, alice, status="failed", asset_state="none")
    r = alice_client.get("/", headers=HX)
    assert r.status_code == 200
    assert b"<html" not in r.content and b'id="video-table"' in r.content
    assert b"data-poll" not in r.content and b'hx-trigger="poll"' not in r.content
    # (the sortable headers fetch the table too, but only when clicked)


def test_it_keeps_polling_until_a_completed_job_is_archived(alice_client, provider, alice) -> None:
    video = make(provider, alice, status="completed", asset_state="pending")
    r = alice_client.get("/", headers=HX)
    assert r.status_code == 200 and b"data-poll" in r.content  # "Archiving…" must turn over
    Video.objects.filter(pk=video.pk).update(asset_state="archived")
    r = alice_client.get("/", headers=HX)
    assert r.status_code == 200 and b"data-poll" not in r.content


def test_it_keeps_polling_while_a_job_is_active(alice_client, provider, alice) -> None:
    make(provider, alice, status="in_progress")
    for headers in ({}, HX):
        r = alice_client.get("/", headers=headers)
        assert r.status_code == 200
        assert b"data-poll" in r.content and b'hx-trigger="poll"' in r.content


def test_only_the_table_polls_not_each_row(alice_client, provider, alice) -> None:
    for _ in range(5):
        make(provider, alice, status="in_progress")
    r = alice_client.get("/", headers=HX)
    assert r.content.count(b'hx-trigger="poll"') == 1
    assert r.content.count(b"data-poll") == 1


def test_the_poll_uses_a_constant_number_of_queries(alice_client, provider, alice, bob) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            alice_client.get("/", headers=HX)
        return len(ctx.captured_queries)

    make(provider, alice, status="in_progress")
    few = queries()
    for i in range(40):
        make(provider, bob if i % 2 else alice, status="in_progress" if i % 3 else "completed")
    many = queries()
    assert few == many <= 6


def test_filters_and_sort_live_in_the_query_string(alice_client, provider, alice, bob) -> None:
    make(provider, alice, prompt="sunset over sea", model="sora-2")
    make(provider, bob, prompt="sunrise in town", model="sora-2-pro")
    make(provider, alice, prompt="failed attempt", status="failed")
    r = alice_client.get("/?q=sun&model=sora-2-pro")
    assert b"sunrise in town" in r.content and b"sunset over sea" not in r.content
    r = alice_client.get("/?mine=1&status=failed")
    assert (
        b"failed attempt" in r.content
        and b"sunrise" not in r.content
        and b"sunset" not in r.content
    )
    r = alice_client.get("/?status=failed&mine=1", headers=HX)
    assert b"status=failed" in r.content or b"failed attempt" in r.content


def test_the_polled_url_keeps_the_filters(alice_client, provider, alice) -> None:
    make(provider, alice, status="queued", prompt="queued one")
    r = alice_client.get("/?q=queued&mine=1")
    # ... and names the view it shows, so a tick needs no profile query.
    assert b'hx-get="/?q=queued&amp;mine=1&amp;page=1&amp;view=table"' in r.content


def test_it_paginates(alice_client, provider, alice, settings) -> None:
    settings.TABLE_PAGE_SIZE = 3
    for i in range(7):
        make(provider, alice, prompt=f"clip number {i}")
    r = alice_client.get("/?page=3")
    assert b"Page 3 of 3" in r.content and b"clip number 0" in r.content


def test_prompts_are_escaped_in_table_and_detail(alice_client, provider, alice) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    video = make(provider, alice, prompt=evil)
    for url in ["/", video.get_absolute_url()]:
        body = alice_client.get(url).content
        assert b"<script>alert" not in body and b"<img src=x" not in body
        assert b"&lt;script&gt;" in body


def test_a_finished_job_of_mine_raises_one_notice(alice_client, provider, alice) -> None:
    make(provider, alice, status="completed", prompt="done deal", notify_pending=True)
    first = alice_client.get("/", headers=HX).content
    assert b"data-toast" in first and b"done deal" in first
    assert b"data-toast" not in alice_client.get("/", headers=HX).content


def test_the_running_count_is_for_my_jobs(alice_client, provider, alice, bob) -> None:
    make(provider, alice, status="in_progress")
    make(provider, alice, status="queued")
    make(provider, bob, status="in_progress")
    assert b'data-running="2"' in alice_client.get("/", headers=HX).content


def test_unknown_ids_are_404(alice_client, db) -> None:
    assert alice_client.get("/videos/999999/").status_code == 404
    assert alice_client.get("/videos/999999/remix/").status_code == 404
    assert alice_client.get("/videos/..%2F..%2Fetc/").status_code == 404


class TestRemixForm:
    def test_it_shows_the_source_count_and_cost(self, alice_client, completed) -> None:
        r = alice_client.get(reverse("jobs:remix", args=[completed.pk]))
        assert r.status_code == 200
        body = r.content.decode()
        from jobs.services.demo import SORA_PRICES

        per_second = float(SORA_PRICES[(completed.model, completed.size)])
        cost = f"${per_second * int(completed.seconds):.2f}"
        assert escape(completed.prompt) in body and "32,000" in body and cost in body

    def test_errors_come_back_next_to_the_field_with_the_prompt_intact(
        self, alice_client, completed
    ) -> None:
        long = "y" * 32_001
        r = alice_client.post(
            reverse("jobs:remix", args=[completed.pk]), {"prompt": long, "key": str(uuid.uuid4())}
        )
        assert r.status_code == 400
        assert b"32,001" in r.content and long.encode() in r.content
        assert Video.objects.count() == 1

    def test_a_double_submit_makes_one_job(self, alice_client, completed, simulator) -> None:
        data = {"prompt": "twice", "key": str(uuid.uuid4())}
        url = reverse("jobs:remix", args=[completed.pk])
        assert alice_client.post(url, data).status_code == 302
        assert alice_client.post(url, data).status_code == 302
        assert Video.objects.filter(prompt="twice").count() == 1

    def test_posting_without_csrf_is_refused(self, alice, completed) -> None:
        from django.test import Client

        c = Client(enforce_csrf_checks=True)
        c.force_login(alice)
        r = c.post(
            reverse("jobs:remix", args=[completed.pk]), {"prompt": "x", "key": str(uuid.uuid4())}
        )
        assert r.status_code == 403
        assert Video.objects.count() == 1


class TestDelete:
    def test_the_owner_deletes_here_and_at_the_provider(
        self, alice_client, alice, provider, simulator
    ) -> None:
        remote = simulator.seed(1)[0]
        video, _ = import_by_id(provider=provider, video_id=remote["id"])
        video.owner = alice
        video.save()
        r = alice_client.post(reverse("jobs:delete", args=[video.pk]))
        assert r.status_code == 302
        assert not Video.objects.filter(pk=video.pk).exists()
        assert simulator.stats()["per_video"][remote["id"]]["delete"] == 1

    def test_someone_else_cannot_delete(self, client, bob, completed) -> None:
        client.force_login(bob)
        assert client.get(reverse("jobs:delete-confirm", args=[completed.pk])).status_code == 403
        assert client.post(reverse("jobs:delete", args=[completed.pk])).status_code == 403
        assert Video.objects.filter(pk=completed.pk).exists()

    def test_staff_can_delete_anything(self, client, staff, completed) -> None:
        client.force_login(staff)
        assert client.post(reverse("jobs:delete", args=[completed.pk])).status_code == 302
        assert not Video.objects.filter(pk=completed.pk).exists()

    def test_a_running_job_cannot_be_deleted(self, alice_client, alice, provider) -> None:
        video = make(provider, alice, status="in_progress")
        r = alice_client.post(reverse("jobs:delete", args=[video.pk]), follow=True)
        assert b"still running" in r.content
        assert Video.objects.filter(pk=video.pk).exists()


@pytest.mark.parametrize("path", ["/admin/", "/admin/jobs/video/", "/admin/jobs/provider/"])
def test_non_staff_cannot_use_the_admin(alice_client, path: str) -> None:
    r = alice_client.get(path)
    assert r.status_code == 302 and "/admin/login/" in r["Location"]


def test_an_unchanged_poll_is_a_bodyless_304(alice_client, provider, alice) -> None:
    make(provider, alice, status="in_progress")
    first = alice_client.get("/", headers=HX)
    assert first.status_code == 200 and "no-cache" in first["Cache-Control"]
    assert "HX-Request" in first["Vary"]
    again = alice_client.get("/", headers={**HX, "If-None-Match": first["ETag"]})
    assert again.status_code == 304 and again.content == b""
    Video.objects.filter(owner=alice).update(progress=55)
    changed = alice_client.get("/", headers={**HX, "If-None-Match": first["ETag"]})
    assert changed.status_code == 200 and b"55%" in changed.content


# --- find and sort, the gallery switch (issue 13, points 7 and 9) ---------------------------


def rows_of(content: bytes) -> list[int]:
    import re

    return [int(pk) for pk in re.findall(rb'<tr id="video-(\d+)"', content)]


def test_search_finds_a_video_by_number_and_by_provider_id(alice_client, provider, alice) -> None:
    videos = [make(provider, alice, prompt=f"clip about boats {n}") for n in range(3)]
    target = videos[1]
    assert rows_of(alice_client.get(f"/?q=%23{target.pk}").content) == [target.pk]
    assert target.pk in rows_of(alice_client.get(f"/?q={target.pk}").content)
    found = alice_client.get(f"/?q={(target.video_id or '')[:12]}").content
    assert rows_of(found) == [target.pk]
    assert rows_of(alice_client.get(f"/?q={target.video_id}").content) == [target.pk]
    # "#" with no number, or one too large for a key, finds nothing rather than failing.
    assert alice_client.get("/?q=%23").status_code == 200
    r = alice_client.get("/?q=%23" + "9" * 40)
    assert r.status_code == 200 and rows_of(r.content) == []


@pytest.mark.parametrize(
    ("sort", "reverse_sort", "key"),
    [("model", "-model", "model"), ("status", "-status", "status"), ("oldest", "newest", "pk")],
)
def test_every_sort_has_an_exact_reverse(
    alice_client, provider, alice, sort: str, reverse_sort: str, key: str
) -> None:
    make(provider, alice, model="sora-2-pro", status="failed")
    make(provider, alice, model="sora-2", status="completed")
    make(provider, alice, model="sora-2-pro", status="completed")
    forward = rows_of(alice_client.get(f"/?sort={sort}").content)
    backward = rows_of(alice_client.get(f"/?sort={reverse_sort}").content)
    assert backward == list(reversed(forward)) and len(forward) == 3
    values = [getattr(Video.objects.get(pk=pk), key) for pk in forward]
    assert values == sorted(values)


def test_the_headers_sort_then_reverse_with_aria_sort(alice_client, provider, alice) -> None:
    make(provider, alice)
    body = alice_client.get("/?q=a&sort=model").content.decode()
    assert 'aria-sort="ascending"' in body
    assert 'href="?q=a&amp;sort=-model"' in body  # the Model header's next click reverses
    assert 'href="?q=a&amp;sort=status"' in body  # the others start with their first order
    body = alice_client.get("/?sort=-model").content.decode()
    assert 'aria-sort="descending"' in body and 'href="?sort=model"' in body


def test_the_view_switch_is_remembered_per_user(alice_client, provider, alice, bob) -> None:
    from jobs.models import Profile

    make(provider, alice, status="in_progress", prompt="a gallery card")
    assert b'class="gallery"' not in alice_client.get("/").content
    r = alice_client.post(reverse("jobs:set-view"), {"view": "gallery", "next": "/?q=gallery"})
    assert r.status_code == 302 and r["Location"] == "/?q=gallery"
    assert Profile.objects.get(user=alice).view == "gallery"
    body = alice_client.get("/").content
    assert b'class="gallery"' in body and b"a gallery card" in body
    assert b'hx-get="/?page=1&amp;view=gallery"' in body  # the poll keeps asking for cards
    assert not Profile.objects.filter(user=bob).exists()  # nobody else's view changed
    # Junk is refused, and a redirect never leaves the site.
    assert alice_client.post(reverse("jobs:set-view"), {"view": "list"}).status_code == 400
    r = alice_client.post(reverse("jobs:set-view"), {"view": "table", "next": "//evil.example/"})
    assert r["Location"] == "/"
    assert Profile.objects.get(user=alice).view == "table"
    assert alice_client.get(reverse("jobs:set-view")).status_code == 405


def test_the_gallery_poll_costs_no_more_queries_than_the_table(
    alice_client, provider, alice
) -> None:
    from jobs.services.preferences import set_view

    make(provider, alice, status="in_progress")
    set_view(alice, "gallery")

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert alice_client.get(url, headers=HX).status_code == 200
        return len(ctx.captured_queries)

    # The poll names its view, so it never reads the profile.
    assert queries("/?page=1&view=gallery") == queries("/?page=1&view=table") <= 6
