"""Collections (issue 14, point 3): who sees one, making and sharing, adding and removing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError

from jobs.models import Collection, CollectionItem, Provider, Video
from jobs.services.collections import (
    MAX_ITEMS,
    add_videos,
    collection_videos,
    collections_page,
    collections_visible_to,
    create_collection,
    delete_collection,
    remove_videos,
    update_collection,
)


def clip(provider: Provider, n: int, owner: User | None = None) -> Video:
    return Video.objects.create(
        provider=provider,
        owner=owner,
        prompt=f"clip {n}",
        model="sora-2",
        size="720x1280",
        seconds="4",
        status=Video.Status.COMPLETED,
        progress=100,
        submission=Video.Submission.SUBMITTED,
        video_id=f"video_c{n}",
    )


@pytest.fixture
def editors(alice: User, bob: User) -> Group:
    team = Group.objects.create(name="editors")
    team.user_set.add(alice, bob)
    return team


@pytest.fixture
def carol(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("carol", password="carol-pass-123")


def test_a_private_collection_is_seen_by_its_owner_and_staff_only(
    alice: User, bob: User, staff: User, editors: Group
) -> None:
    private = create_collection(user=alice, name="Alice's picks")
    assert list(collections_visible_to(alice)) == [private]
    assert list(collections_visible_to(staff)) == [private]
    # bob shares a team with alice, but the collection is not shared with it
    assert not collections_visible_to(bob).filter(pk=private.pk).exists()


def test_a_team_collection_is_seen_by_its_members_but_not_by_another_team(
    alice: User, bob: User, carol: User, editors: Group
) -> None:
    others = Group.objects.create(name="sound")
    others.user_set.add(carol)
    shared = create_collection(user=alice, name="Cut 1", team_id=editors.pk)
    theirs = create_collection(user=carol, name="Foley", team_id=others.pk)
    assert set(collections_visible_to(bob)) == {shared}
    assert set(collections_visible_to(carol)) == {theirs}
    assert set(collections_visible_to(alice)) == {shared}
    # one row per collection even for a member of several teams
    others.user_set.add(alice)
    assert sorted(c.pk for c in collections_visible_to(alice)) == sorted([shared.pk, theirs.pk])


def test_anonymous_sees_nothing(alice: User) -> None:
    from django.contrib.auth.models import AnonymousUser

    create_collection(user=alice, name="x")
    assert not collections_visible_to(AnonymousUser()).exists()


def test_the_collections_page_splits_mine_my_teams_and_for_staff_the_rest(
    alice: User, bob: User, staff: User, editors: Group
) -> None:
    mine = create_collection(user=alice, name="Mine")
    shared = create_collection(user=bob, name="Team cut", team_id=editors.pk)
    bobs = create_collection(user=bob, name="Bob only")
    lists = collections_page(alice)
    assert (lists.mine, lists.teams, lists.others) == ([mine], [shared], [])
    for_staff = collections_page(staff)
    assert for_staff.mine == [] and for_staff.teams == []
    assert {c.pk for c in for_staff.others} == {mine.pk, shared.pk, bobs.pk}


def test_names_are_tidied_and_unique_per_owner(alice: User, bob: User) -> None:
    made = create_collection(user=alice, name="  Final   picks ")
    assert made.name == "Final picks"
    with pytest.raises(ValidationError) as exc:
        create_collection(user=alice, name="final PICKS")
    assert "already a collection named" in str(exc.value)
    create_collection(user=bob, name="Final picks")  # another owner may use it
    with pytest.raises(ValidationError, match="Give the collection a name"):
        create_collection(user=alice, name="   ")
    with pytest.raises(ValidationError, match="100 characters"):
        create_collection(user=alice, name="x" * 101)


def test_sharing_is_only_with_a_team_you_are_in_and_staff_may_pick_any(
    alice: User, staff: User, editors: Group
) -> None:
    outside = Group.objects.create(name="outside")
    with pytest.raises(ValidationError, match="team you are in"):
        create_collection(user=alice, name="Leak", team_id=outside.pk)
    assert create_collection(user=staff, name="Any", team_id=outside.pk).team == outside
    assert create_collection(user=alice, name="Ours", team_id=editors.pk).team == editors


def test_only_the_owner_or_staff_renames_reshares_or_deletes(
    alice: User, bob: User, staff: User, editors: Group, provider: Provider
) -> None:
    shared = create_collection(user=alice, name="Cut", team_id=editors.pk)
    with pytest.raises(PermissionDenied):
        update_collection(user=bob, collection=shared, name="Bob's now", team_id=None)
    with pytest.raises(PermissionDenied):
        delete_collection(user=bob, collection=shared)
    update_collection(user=alice, collection=shared, name="Cut 2", team_id=None)
    shared.refresh_from_db()
    assert (shared.name, shared.team_id) == ("Cut 2", None)
    video = clip(provider, 1, alice)
    add_videos(user=alice, collection=shared, videos=[video])
    words = delete_collection(user=staff, collection=shared)
    assert "Cut 2" in words
    assert not Collection.objects.exists()
    assert Video.objects.filter(pk=video.pk).exists()  # the videos stay


def test_team_members_add_and_remove_and_adding_twice_keeps_one(
    alice: User, bob: User, editors: Group, provider: Provider
) -> None:
    shared = create_collection(user=alice, name="Cut", team_id=editors.pk)
    one, two, three = (clip(provider, n) for n in range(3))
    assert add_videos(user=bob, collection=shared, videos=[one, two]) == (2, 0)
    assert add_videos(user=alice, collection=shared, videos=[two, three]) == (1, 1)
    assert [v.pk for v in collection_videos(shared)] == [one.pk, two.pk, three.pk]
    assert CollectionItem.objects.get(collection=shared, video=one).added_by == bob
    assert remove_videos(user=bob, collection=shared, video_ids=[one.pk, 999]) == 1
    assert [v.pk for v in collection_videos(shared)] == [two.pk, three.pk]


def test_outsiders_cannot_add_to_or_remove_from_a_private_collection(
    alice: User, bob: User, provider: Provider
) -> None:
    private = create_collection(user=alice, name="Mine")
    video = clip(provider, 1)
    with pytest.raises(PermissionDenied):
        add_videos(user=bob, collection=private, videos=[video])
    add_videos(user=alice, collection=private, videos=[video])
    with pytest.raises(PermissionDenied):
        remove_videos(user=bob, collection=private, video_ids=[video.pk])
    assert private.items.count() == 1


def test_a_collection_has_a_ceiling(
    alice: User, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobs.services.collections as collections

    monkeypatch.setattr(collections, "MAX_ITEMS", 2)
    box = create_collection(user=alice, name="Small")
    videos = [clip(provider, n) for n in range(3)]
    with pytest.raises(ValidationError, match="at most 2 videos"):
        add_videos(user=alice, collection=box, videos=videos)
    assert box.items.count() == 0  # all or nothing
    assert MAX_ITEMS == 500
