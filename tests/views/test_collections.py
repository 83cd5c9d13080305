"""The Collections pages through the client: forms, permissions, the picker on a video's page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from jobs.models import Collection, Provider, Video
from jobs.services.collections import add_videos, create_collection


def clip(provider: Provider, n: int, owner: User | None = None) -> Video:
    return Video.objects.create(
        provider=provider, owner=owner, prompt=f"clip {n}", model="sora-2", size="720x1280",
        seconds="4", status=Video.Status.COMPLETED, progress=100,
        submission=Video.Submission.SUBMITTED, video_id=f"video_v{n}",
        asset_state=Video.Assets.NONE,
    )  # fmt: skip


@pytest.fixture
def bob_client(bob: User) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture
def editors(alice: User, bob: User) -> Group:
    team = Group.objects.create(name="editors")
    team.user_set.add(alice, bob)
    return team


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/collections/"),
        ("get", "/collections/1/"),
        ("post", "/collections/1/edit/"),
        ("post", "/collections/1/delete/"),
        ("post", "/bulk/"),
        ("get", "/export.csv"),
        ("get", "/usage/export.csv"),
    ],
)
def test_anonymous_visitors_are_sent_to_log_in(
    client: Client, db: None, method: str, path: str
) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_making_a_collection_through_the_form(
    alice_client: Client, alice: User, editors: Group
) -> None:
    page = alice_client.get("/collections/")
    assert page.status_code == 200
    assert b"You have no collections yet" in page.content
    assert b'<option value="%d">editors</option>' % editors.pk in page.content
    response = alice_client.post("/collections/", {"name": "Cut 1", "team": str(editors.pk)})
    made = Collection.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/collections/{made.pk}/"
    assert (made.owner, made.team) == (alice, editors)
    page = alice_client.get(response["Location"])
    assert "Shared with team “editors”" in page.content.decode()


def test_a_refused_name_is_shown_next_to_the_field(alice_client: Client, alice: User) -> None:
    create_collection(user=alice, name="Cut 1")
    response = alice_client.post("/collections/", {"name": "cut 1", "team": ""})
    assert response.status_code == 400
    assert "There is already a collection named “cut 1”." in response.content.decode()
    foreign = Group.objects.create(name="elsewhere")
    response = alice_client.post("/collections/", {"name": "Other", "team": str(foreign.pk)})
    assert response.status_code == 400  # not one of her teams: not even a choice
    assert Collection.objects.count() == 1


def test_a_non_member_gets_404_for_a_private_or_another_teams_collection(
    alice: User, bob_client: Client, django_user_model: type[User]
) -> None:
    private = create_collection(user=alice, name="Private")
    carol = django_user_model.objects.create_user("carol")
    sound = Group.objects.create(name="sound")
    sound.user_set.add(alice, carol)
    theirs = create_collection(user=alice, name="Sound's", team_id=sound.pk)
    for collection in (private, theirs):
        assert bob_client.get(f"/collections/{collection.pk}/").status_code == 404
        assert (
            bob_client.post(f"/collections/{collection.pk}/edit/", {"name": "x"}).status_code == 404
        )
        assert bob_client.post(f"/collections/{collection.pk}/delete/").status_code == 404
    assert Collection.objects.count() == 2
    assert b"Private" not in bob_client.get("/collections/").content


def test_a_team_member_sees_it_but_only_the_owner_renames_or_deletes(
    alice_client: Client, alice: User, bob_client: Client, editors: Group
) -> None:
    shared = create_collection(user=alice, name="Cut", team_id=editors.pk)
    page = bob_client.get(shared.get_absolute_url())
    assert page.status_code == 200 and b"Rename or share" not in page.content
    assert bob_client.post(f"/collections/{shared.pk}/edit/", {"name": "Bob's"}).status_code == 403
    assert bob_client.post(f"/collections/{shared.pk}/delete/").status_code == 403
    assert b"Cut" in bob_client.get("/collections/").content

    response = alice_client.post(f"/collections/{shared.pk}/edit/", {"name": "Cut 2", "team": ""})
    assert response.status_code == 302
    shared.refresh_from_db()
    assert (shared.name, shared.team) == ("Cut 2", None)
    assert bob_client.get(shared.get_absolute_url()).status_code == 404  # private now
    response = alice_client.post(f"/collections/{shared.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/collections/"
    assert not Collection.objects.exists()


def test_a_failed_rename_keeps_the_old_name_in_the_heading(
    alice_client: Client, alice: User
) -> None:
    create_collection(user=alice, name="Taken")
    mine = create_collection(user=alice, name="Mine")
    response = alice_client.post(f"/collections/{mine.pk}/edit/", {"name": "taken"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "<h1>Mine</h1>" in body and "already a collection named" in body


def test_the_video_page_adds_to_and_removes_from_a_collection(
    alice_client: Client, alice: User, provider: Provider
) -> None:
    video = clip(provider, 1)
    picks = create_collection(user=alice, name="Picks")
    page = alice_client.get(video.get_absolute_url()).content.decode()
    assert "Not in any of your collections." in page
    assert f'<option value="{picks.pk}">Picks</option>' in page
    back = video.get_absolute_url()
    response = alice_client.post(
        "/bulk/", {"action": "add", "ids": video.pk, "collection": picks.pk, "next": back}
    )
    assert response.status_code == 302 and response["Location"] == back
    page = alice_client.get(back).content.decode()
    assert 'aria-label="Remove from Picks"' in page
    assert "Added 1 video to “Picks”." in page
    alice_client.post(
        "/bulk/", {"action": "remove", "ids": video.pk, "collection": picks.pk, "next": back}
    )
    assert not picks.items.exists()


def test_the_collection_page_shows_its_gallery_and_only_archived_videos_in_play_all(
    alice_client: Client, alice: User, provider: Provider
) -> None:
    box = create_collection(user=alice, name="Box")
    played = clip(provider, 1)
    Video.objects.filter(pk=played.pk).update(
        asset_state=Video.Assets.ARCHIVED, video_file="archive/1/a/video.mp4"
    )
    waiting = clip(provider, 2)
    add_videos(user=alice, collection=box, videos=[played, waiting])
    body = alice_client.get(box.get_absolute_url()).content.decode()
    assert body.count('class="vcard"') == 2  # the jobs list's own card partial
    assert 'form="bulk"' in body and "Remove from this collection" in body
    assert body.count("data-playlist-item") == 1
    assert 'data-src="/media/archive/1/a/video.mp4"' in body
    assert "1 archived video, played one after another." in body


def test_malformed_collection_ids_are_404_not_500(alice_client: Client, db: None) -> None:
    for path in ("/collections/99999999999999999999999/", "/collections/-1/", "/collections/x/"):
        assert alice_client.get(path).status_code == 404
