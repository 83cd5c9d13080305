"""Polls decided before rendering (jobs/table_version.py, jobs/views/polls.py): an unchanged
tick is a 304 after one query of its own, a tick with the same rows carries only the rows that
changed, anything else the whole partial; the detail panel likewise; HTML is compressed."""

from __future__ import annotations

import gzip
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.models import Provider, Video

HX = {"HX-Request": "true"}
URL = "/?page=1&view=table"


@pytest.fixture
def offline(db: Any) -> Provider:
    """Nothing here calls the provider: nothing listens on port 9."""
    return Provider.objects.create(
        name="Offline", base_url="http://127.0.0.1:9/v1", api_key_env="SIMULATOR_API_KEY"
    )


def rows(provider: Provider, owner: User | None, count: int, **kw: Any) -> list[Video]:
    at = kw.pop("requested_at", timezone.now() - timedelta(hours=1))
    fields: dict[str, Any] = {
        "status": "in_progress",
        "progress": 10,
        "submission": Video.Submission.SUBMITTED,
        **kw,
    }
    return Video.objects.bulk_create(
        Video(
            provider=provider,
            owner=owner,
            video_id=f"video_{uuid.uuid4().hex}",
            model="sora-2",
            prompt=f"clip {n}: a kite over the dunes",
            size="720x1280",
            seconds="4",
            requested_at=at + timedelta(seconds=n),
            **fields,
        )
        for n in range(count)
    )


def poll(client: Client, etag: str | None, url: str = URL) -> Any:
    headers = {**HX, **({"If-None-Match": etag} if etag else {})}
    return client.get(url, headers=headers)


def swapped(content: bytes) -> list[int]:
    """The rows an answer swaps out of band, in order."""
    return [int(pk) for pk in re.findall(rb'id="video-(\d+)"[^>]*hx-swap-oob="morph"', content)]


def test_an_unchanged_tick_is_a_304_after_one_query_of_its_own(
    alice_client: Client, alice: User, offline: Provider
) -> None:
    rows(offline, alice, 5)
    first = poll(alice_client, None)
    assert first.status_code == 200 and first["ETag"]
    with CaptureQueriesContext(connection) as ctx:
        again = poll(alice_client, first["ETag"])
    assert again.status_code == 304 and again.content == b""
    # The session, the user, and the key: nothing else ran (no render, no notices query).
    assert len(ctx.captured_queries) == 3, [q["sql"][:80] for q in ctx.captured_queries]
    assert again["ETag"] == first["ETag"]
    assert "no-cache" in again["Cache-Control"] and "HX-Request" in again["Vary"]


def test_a_changed_tick_carries_only_the_rows_that_changed(
    alice_client: Client, alice: User, offline: Provider
) -> None:
    videos = rows(offline, alice, 6)
    etag = poll(alice_client, None)["ETag"]
    Video.objects.filter(pk__in=[videos[1].pk, videos[4].pk]).update(progress=64)
    with CaptureQueriesContext(connection) as ctx:
        changed = poll(alice_client, etag)
    assert changed.status_code == 200 and changed["HX-Reswap"] == "none"
    assert swapped(changed.content) == [videos[4].pk, videos[1].pk]  # in the page's order
    assert b"64%" in changed.content and b"<table" not in changed.content
    assert b'id="table-notices" hidden data-running="6" hx-swap-oob="true"' in changed.content
    # It only makes sense on top of the tab's copy: no cache may keep it.
    assert "no-store" in changed["Cache-Control"]
    assert len(ctx.captured_queries) == 4  # session, user, key, the two rows
    assert poll(alice_client, changed["ETag"]).status_code == 304


def test_a_write_of_unshown_bookkeeping_keeps_the_304(
    alice_client: Client, alice: User, offline: Provider
) -> None:
    videos = rows(offline, alice, 3)
    etag = poll(alice_client, None)["ETag"]
    # A tracker's lease moves next_poll_at only: no tab needs to hear about it.
    Video.objects.filter(pk=videos[0].pk).update(next_poll_at=timezone.now())
    assert poll(alice_client, etag).status_code == 304
    Video.objects.filter(pk=videos[0].pk).update(last_error="The provider is slow today.")
    assert swapped(poll(alice_client, etag).content) == [videos[0].pk]


@pytest.mark.parametrize("change", ["new row", "deleted row", "left the filter"])
def test_when_the_rows_themselves_change_the_whole_table_comes(
    alice_client: Client, alice: User, offline: Provider, change: str
) -> None:
    videos = rows(offline, alice, 4)
    third = videos[2].pk
    url = "/?status=in_progress&page=1&view=table"
    etag = poll(alice_client, None, url)["ETag"]
    if change == "new row":
        rows(offline, alice, 1, requested_at=timezone.now())
    elif change == "deleted row":
        videos[2].delete()
    else:
        Video.objects.filter(pk=videos[2].pk).update(status="queued")
    answer = poll(alice_client, etag, url)
    assert answer.status_code == 200 and not answer.has_header("HX-Reswap")
    assert b'<table class="videos">' in answer.content and b"hx-swap-oob" not in answer.content
    assert (b'id="video-%d"' % third in answer.content) == (change == "new row")


def test_a_version_never_crosses_users_filters_or_views(
    alice_client: Client, alice: User, bob: User, offline: Provider, client: Client
) -> None:
    rows(offline, alice, 3)
    etag = poll(alice_client, None)["ETag"]
    for url in ("/?page=1&view=gallery", "/?mine=1&page=1&view=table", "/?page=2&view=table"):
        assert poll(alice_client, etag, url).status_code == 200, url
    bob_client = Client()
    bob_client.force_login(bob)
    answer = poll(bob_client, etag)
    assert answer.status_code == 200 and b'<table class="videos">' in answer.content


def test_news_for_me_is_never_a_304_and_is_told_once(
    alice_client: Client, alice: User, offline: Provider
) -> None:
    videos = rows(offline, alice, 3)
    etag = poll(alice_client, None)["ETag"]
    # One of mine finished: the row changed, and a toast waits in the notices.
    Video.objects.filter(pk=videos[0].pk).update(
        status="completed", progress=100, asset_state="archived", notify_pending=True
    )
    first = poll(alice_client, etag)
    assert first.status_code == 200
    assert b"data-toast" in first.content and b"completed" in first.content
    assert b'data-running="2"' in first.content
    assert not Video.objects.filter(notify_pending=True).exists()
    # The answer's version still said "news": the next tick settles, then it is quiet.
    settle = poll(alice_client, first["ETag"])
    assert settle.status_code == 200 and b"data-toast" not in settle.content
    assert poll(alice_client, settle["ETag"]).status_code == 304


def test_a_tick_whose_rows_all_finished_gets_the_whole_table_without_a_poll(
    alice_client: Client, alice: User, offline: Provider
) -> None:
    videos = rows(offline, None, 2)  # imported: no notices for anyone
    etag = poll(alice_client, None)["ETag"]
    Video.objects.filter(pk__in=[v.pk for v in videos]).update(
        status="failed", asset_state="none", error_message="Blocked."
    )
    answer = poll(alice_client, etag)
    assert answer.status_code == 200 and b"data-poll" not in answer.content
    assert b'<table class="videos">' in answer.content


def test_the_gallery_gets_changed_cards(
    alice_client: Client, alice: User, offline: Provider
) -> None:
    videos = rows(offline, alice, 3)
    url = "/?page=1&view=gallery"
    etag = poll(alice_client, None, url)["ETag"]
    Video.objects.filter(pk=videos[2].pk).update(progress=77)
    answer = poll(alice_client, etag, url)
    assert swapped(answer.content) == [videos[2].pk]
    assert b'class="vcard"' in answer.content and b"77%" in answer.content


def test_the_full_page_says_which_version_the_table_shows(
    alice_client: Client, alice: User, offline: Provider
) -> None:
    rows(offline, alice, 2)
    page = alice_client.get("/")
    version = re.search(rb'data-version="([^"]+)"', page.content)
    assert version is not None
    etag = version.group(1).decode().replace("&quot;", '"')
    assert poll(alice_client, etag).status_code == 304


def test_the_detail_panel_is_a_304_until_the_video_changes(
    alice_client: Client, alice: User, offline: Provider
) -> None:
    (video,) = rows(offline, alice, 1)
    url = f"/videos/{video.pk}/"
    first = alice_client.get(url, headers=HX)
    assert first.status_code == 200 and b"data-version" in first.content
    with CaptureQueriesContext(connection) as ctx:
        again = alice_client.get(url, headers={**HX, "If-None-Match": first["ETag"]})
    assert again.status_code == 304 and len(ctx.captured_queries) == 3
    Video.objects.filter(pk=video.pk).update(progress=55)
    changed = alice_client.get(url, headers={**HX, "If-None-Match": first["ETag"]})
    assert changed.status_code == 200 and b"55%" in changed.content
    video.delete()
    gone = alice_client.get(url, headers={**HX, "If-None-Match": changed["ETag"]})
    assert gone.status_code == 404


def test_html_is_compressed_and_media_ranges_are_not(
    alice_client: Client, alice: User, offline: Provider, settings: Any, tmp_path: Any
) -> None:
    rows(offline, alice, 10)
    plain = alice_client.get(URL, headers=HX)
    packed = alice_client.get(URL, headers={**HX, "Accept-Encoding": "gzip"})
    assert packed["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed["Vary"]
    assert len(packed.content) * 4 < len(plain.content)
    assert b"clip 3: a kite" in gzip.decompress(packed.content)
    # A weakened ETag (gzip) still matches.
    assert packed["ETag"].startswith('W/"')
    assert poll(alice_client, packed["ETag"]).status_code == 304
    settings.MEDIA_ROOT = str(tmp_path)
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "clip.mp4").write_bytes(b"\0" * 5000)
    media = alice_client.get(
        "/media/archive/clip.mp4", headers={"Accept-Encoding": "gzip", "Range": "bytes=0-99"}
    )
    assert media.status_code == 206 and not media.has_header("Content-Encoding")


def test_changed_rows_are_rendered_per_viewer_with_a_fresh_csrf_token_each_time(
    alice_client: Client, alice: User, bob: User, offline: Provider
) -> None:
    (video,) = rows(offline, alice, 1, submission=Video.Submission.PENDING)
    bob_client = Client()
    bob_client.force_login(bob)
    tokens = []
    for client in (alice_client, alice_client, bob_client):
        etag = poll(client, None)["ETag"]
        Video.objects.filter(pk=video.pk).update(progress=F("progress") + 1)
        answer = poll(client, etag).content.decode()
        assert swapped(answer.encode()) == [video.pk]
        found = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', answer)
        tokens.append(found[0] if found else None)
    # Alice may cancel her job (a form with a token, masked afresh every answer); Bob may not.
    assert tokens[0] and tokens[1] and tokens[0] != tokens[1] and tokens[2] is None
