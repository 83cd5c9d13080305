"""Share links: made by the owner, refused in words when revoked or expired, behind an optional
password, and reaching nothing but what they share."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.models import AuditEvent, Collection, CollectionItem, Provider, ShareLink, Video
from jobs.services import sharing

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()  # the password counters live there


@pytest.fixture
def offline(db: None) -> Provider:
    return Provider.objects.create(name="P", base_url="http://127.0.0.1:9/v1")


def clip(owner: User | None, provider: Provider, media_root: Path, prompt: str) -> Video:
    """A completed, archived video whose files are on disk."""
    video = Video.objects.create(
        owner=owner, provider=provider, prompt=prompt, status="completed", progress=100,
        asset_state="archived", seconds="4", size="1280x720",
    )  # fmt: skip
    for field, name, data in (
        ("video_file", "video.mp4", MP4),
        ("thumbnail_file", "thumbnail.webp", b"RIFF\x00\x00\x00\x00WEBP"),
    ):
        path = media_root / "archive" / str(video.pk) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        setattr(video, field, f"archive/{video.pk}/{name}")
    video.save()
    return video


@pytest.fixture
def mine(alice: User, offline: Provider, media_root: Path) -> Video:
    return clip(alice, offline, media_root, "A paper boat on a puddle")


@pytest.fixture
def other(bob: User, offline: Provider, media_root: Path) -> Video:
    return clip(bob, offline, media_root, "Someone else's secret")


def link_to(target: Video | Collection, user: User, **kwargs: str) -> ShareLink:
    return sharing.create_link(
        user=user, target=target, expires=kwargs.pop("expires", "7"), **kwargs
    )


def media(link: ShareLink, video: Video, variant: str = "video") -> str:
    return reverse("jobs:shared-media", args=[link.token, video.pk, variant])


# --- making and revoking -------------------------------------------------------------------


def test_the_owner_makes_a_link_and_it_is_audited(
    alice_client: Client, alice: User, mine: Video
) -> None:
    r = alice_client.post(
        reverse("jobs:share-video", args=[mine.pk]), {"expires": "1", "password": ""}
    )
    link = ShareLink.objects.get()
    assert r.status_code == 302 and r["Location"].endswith(f"#link-{link.pk}")
    assert link.video == mine and link.created_by == alice and link.password == ""
    assert link.expires_at is not None
    assert abs(link.expires_at - (timezone.now() + timedelta(days=1))) < timedelta(minutes=1)
    assert len(link.token) >= 43  # 256 random bits
    page = alice_client.get(reverse("jobs:share-video", args=[mine.pk])).content.decode()
    assert f"http://testserver/s/{link.token}/" in page and "Active" in page
    entry = AuditEvent.objects.get(action="shared")
    assert (entry.actor, entry.target_type, entry.target_id) == (alice, "video", str(mine.pk))
    assert entry.detail == {"link": link.pk, "expires": "1 day", "password": False}


def test_only_the_owner_or_staff_shares_or_sees_the_links(
    client: Client, bob: User, staff: User, mine: Video, alice: User
) -> None:
    link = link_to(mine, alice)
    client.force_login(bob)
    url = reverse("jobs:share-video", args=[mine.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"expires": "7"}).status_code == 403
    assert client.post(reverse("jobs:share-revoke", args=[link.pk])).status_code == 403
    assert ShareLink.objects.count() == 1 and ShareLink.objects.get().revoked_at is None
    client.force_login(staff)
    assert client.get(url).status_code == 200
    assert client.post(url, {"expires": "never"}).status_code == 302
    assert ShareLink.objects.filter(expires_at__isnull=True).count() == 1


def test_a_revoked_link_is_refused_in_words(
    alice_client: Client, client: Client, alice: User, mine: Video
) -> None:
    link = link_to(mine, alice)
    r = alice_client.post(reverse("jobs:share-revoke", args=[link.pk]))
    assert r.status_code == 302
    assert AuditEvent.objects.filter(action="share_revoked", target_id=str(mine.pk)).exists()
    alice_client.logout()
    page = client.get(link.get_absolute_url())
    assert page.status_code == 410
    assert "This share link was revoked by the person who made it" in page.content.decode()
    assert client.get(media(link, mine)).status_code == 410


def test_an_expired_link_is_refused_in_words(client: Client, alice: User, mine: Video) -> None:
    link = link_to(mine, alice, expires="1")
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    page = client.get(link.get_absolute_url())
    assert page.status_code == 410
    text = page.content.decode()
    assert "This link has expired" in text and "This share link expired on" in text
    assert client.get(media(link, mine)).status_code == 410


def test_an_unknown_token_is_a_404(client: Client, mine: Video) -> None:
    assert client.get("/s/not-a-token/").status_code == 404
    assert client.get(f"/s/{'x' * 80}/").status_code == 404
    assert client.get(f"/s/nope/media/{mine.pk}/video").status_code == 404


# --- what a link reaches ---------------------------------------------------------------------


def test_a_link_shows_its_video_without_a_login_and_nothing_else(
    client: Client, alice: User, mine: Video, other: Video
) -> None:
    link = link_to(mine, alice)
    page = client.get(link.get_absolute_url())
    assert page.status_code == 200
    text = page.content.decode()
    assert "A paper boat on a puddle" in text and media(link, mine) in text
    assert "Someone else" not in text
    assert 'href="/' not in text.replace('href="/static/', "")  # no link into the dashboard
    assert "alice" not in text  # nor who made it
    assert "no-store" in page["Cache-Control"] and page["X-Robots-Tag"] == "noindex, nofollow"

    whole = client.get(media(link, mine))
    assert whole.status_code == 200 and isinstance(whole, StreamingHttpResponse)
    assert b"".join(whole.streaming_content) == MP4
    part = client.get(media(link, mine), headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 0-9/{len(MP4)}"
    assert client.get(media(link, mine, "thumbnail")).status_code == 200

    # Another video's files, through this token: 404, whatever the variant.
    assert client.get(media(link, other)).status_code == 404
    assert client.get(media(link, other, "thumbnail")).status_code == 404
    assert client.get(media(link, mine, "input_reference")).status_code == 404
    # And the token opens no login-only page.
    for path in (reverse("jobs:detail", args=[mine.pk]), "/", f"/media/{mine.video_file.name}"):
        assert client.get(path).status_code == 302  # to the log-in page


def test_a_collection_link_lists_its_videos_and_reaches_only_them(
    client: Client, alice: User, mine: Video, other: Video, offline: Provider, media_root: Path
) -> None:
    second = clip(alice, offline, media_root, "A second boat")
    box = Collection.objects.create(name="Boats", owner=alice)
    for video in (mine, second):
        CollectionItem.objects.create(collection=box, video=video)
    link = link_to(box, alice)
    text = client.get(link.get_absolute_url()).content.decode()
    assert "Boats" in text and "A paper boat" in text and "A second boat" in text
    assert text.index("A paper boat") < text.index("A second boat")  # in the order added
    assert "Someone else" not in text
    assert client.get(media(link, second)).status_code == 200
    assert client.get(media(link, other)).status_code == 404
    CollectionItem.objects.filter(video=second).delete()  # taken out: no longer shared
    assert client.get(media(link, second)).status_code == 404


def test_only_the_owner_shares_a_collection(client: Client, alice: User, bob: User) -> None:
    box = Collection.objects.create(name="Private", owner=alice)
    url = reverse("jobs:share-collection", args=[box.pk])
    client.force_login(bob)
    assert client.get(url).status_code == 404  # not even visible: a private collection
    team = Group.objects.create(name="Studio")
    bob.groups.add(team)
    Collection.objects.filter(pk=box.pk).update(team=team)
    assert client.get(url).status_code == 403  # a team member sees it, but shares nothing
    assert client.post(url, {"expires": "7"}).status_code == 403
    client.force_login(alice)
    assert client.post(url, {"expires": "30", "password": "pw"}).status_code == 302
    link = ShareLink.objects.get()
    assert link.collection == box and link.video is None and link.password != "pw"
    assert AuditEvent.objects.get(action="shared").target_type == "collection"


# --- the password ------------------------------------------------------------------------------


def test_the_password_unlocks_the_link_for_this_browser_only(
    client: Client, alice: User, mine: Video
) -> None:
    link = link_to(mine, alice, password="open sesame")
    assert link.password.startswith("md5$") or "$" in link.password  # hashed, never plain
    assert "open sesame" not in link.password
    form = client.get(link.get_absolute_url())
    assert form.status_code == 200 and "This link has a password" in form.content.decode()
    assert client.get(media(link, mine)).status_code == 404  # locked: no file either
    wrong = client.post(link.get_absolute_url(), {"password": "nope"})
    assert wrong.status_code == 403
    assert "That is not the password for this link." in wrong.content.decode()
    right = client.post(link.get_absolute_url(), {"password": "open sesame"})
    assert right.status_code == 302
    assert "A paper boat" in client.get(link.get_absolute_url()).content.decode()
    assert client.get(media(link, mine)).status_code == 200
    stranger = Client()
    assert "This link has a password" in stranger.get(link.get_absolute_url()).content.decode()


def test_password_tries_are_limited_per_link_and_address(
    client: Client, alice: User, mine: Video
) -> None:
    link = link_to(mine, alice, password="right")
    for _ in range(sharing.PASSWORD_TRIES):
        assert client.post(link.get_absolute_url(), {"password": "wrong"}).status_code == 403
    locked = client.post(link.get_absolute_url(), {"password": "right"})
    assert locked.status_code == 429
    assert "Too many wrong passwords from your address; try again in 15 minutes." in (
        locked.content.decode()
    )
    elsewhere = Client(REMOTE_ADDR="203.0.113.9")  # another address is not locked out
    assert elsewhere.post(link.get_absolute_url(), {"password": "right"}).status_code == 302
