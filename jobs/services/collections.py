"""Collections: who sees one (the one rule), making, renaming, sharing and deleting them, and
adding and removing videos.

A collection is private to its owner, or shared with one team (a Django group): its members
see it and add or remove videos; only the owner (or staff) renames, re-shares or deletes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from jobs.models import Collection, CollectionItem, Video
from jobs.selectors import with_retries

NAME_MAX = Collection._meta.get_field("name").max_length or 100
# A collection's page, its "play all" and its zip stay bounded; a team that needs more makes two.
MAX_ITEMS = 500


def collections_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Collection]:
    """THE visibility rule: its owner, the members of its team, and staff; nobody else.

    Every page, action and menu that shows a collection starts from this queryset, so a
    private collection, or another team's, is a 404 to anyone outside it.
    """
    if not user.is_authenticated:
        return Collection.objects.none()
    qs = Collection.objects.select_related("owner", "team")
    if getattr(user, "is_staff", False):
        return qs
    # A subquery on the user's groups, not a join: one row per collection, however many teams.
    teams = Group.objects.filter(user=user.pk).values("pk")
    return qs.filter(Q(owner=user) | Q(team__in=teams))


def with_counts(qs: QuerySet[Collection]) -> QuerySet[Collection]:
    return qs.annotate(item_count=Count("items", distinct=True))


def team_choices(user: User) -> QuerySet[Group]:
    """The teams `user` may share a collection with: their own; staff, any."""
    groups = Group.objects.order_by("name")
    return groups if user.is_staff else groups.filter(user=user)


@dataclass(frozen=True)
class Lists:
    mine: list[Collection]
    teams: list[Collection]  # shared with a team I am in, owned by somebody else
    others: list[Collection]  # staff only: everybody else's


def collections_page(user: User) -> Lists:
    """The Collections page: mine, my teams', and (for staff) the rest, each by name."""
    mine: list[Collection] = []
    teams: list[Collection] = []
    others: list[Collection] = []
    my_teams = set(user.groups.values_list("pk", flat=True))
    for c in with_counts(collections_visible_to(user)).order_by("name", "pk"):
        if c.owner_id == user.pk:
            mine.append(c)
        elif c.team_id in my_teams:
            teams.append(c)
        else:
            others.append(c)
    return Lists(mine, teams, others)


def _clean(user: User, name: str, team_id: int | None, *, owner_id: int, pk: int | None) -> str:
    name = " ".join(name.split())  # no stray or doubled whitespace in a heading
    if not name:
        raise ValidationError({"name": "Give the collection a name."})
    if len(name) > NAME_MAX:
        raise ValidationError({"name": f"Keep the name to {NAME_MAX} characters or fewer."})
    if team_id is not None and not team_choices(user).filter(pk=team_id).exists():
        raise ValidationError({"team": "You can only share a collection with a team you are in."})
    taken = Collection.objects.filter(owner_id=owner_id, name__iexact=name)
    if pk is not None:
        taken = taken.exclude(pk=pk)
    if taken.exists():
        raise ValidationError({"name": f"There is already a collection named “{name}”."})
    return name


def create_collection(*, user: User, name: str, team_id: int | None = None) -> Collection:
    """A new collection, private (team_id None) or shared with one of the user's teams."""
    name = _clean(user, name, team_id, owner_id=user.pk, pk=None)
    try:
        with transaction.atomic():
            return Collection.objects.create(name=name, owner=user, team_id=team_id)
    except IntegrityError:  # the same name, from another tab, a moment earlier
        raise ValidationError({"name": f"There is already a collection named “{name}”."}) from None


def update_collection(
    *, user: User, collection: Collection, name: str, team_id: int | None
) -> Collection:
    """Rename it and choose who shares it: its owner or staff only."""
    if not collection.can_be_managed_by(user):
        raise PermissionDenied("Only the person who made this collection, or staff, can change it.")
    collection.name = _clean(user, name, team_id, owner_id=collection.owner_id, pk=collection.pk)
    collection.team_id = team_id
    try:
        with transaction.atomic():
            collection.save(update_fields=["name", "team"])
    except IntegrityError:
        raise ValidationError(
            {"name": f"There is already a collection named “{collection.name}”."}
        ) from None
    return collection


def delete_collection(*, user: User, collection: Collection) -> str:
    """Delete the collection (its videos stay where they are); the words for the user."""
    if not collection.can_be_managed_by(user):
        raise PermissionDenied("Only the person who made this collection, or staff, can delete it.")
    name = collection.name
    collection.delete()
    return f"Deleted the collection “{name}”. Its videos are still in the list."


def add_videos(*, user: User, collection: Collection, videos: Iterable[Video]) -> tuple[int, int]:
    """Add videos the user can see to a collection they can see: (added, already there).

    Adding twice is harmless: the unique (collection, video) pair keeps one item.
    """
    _require_visible(user, collection)
    wanted = {v.pk for v in videos}
    if not wanted:
        raise ValidationError("Select at least one video first.")
    with transaction.atomic():
        there = set(
            CollectionItem.objects.filter(collection=collection, video_id__in=wanted).values_list(
                "video_id", flat=True
            )
        )
        new = sorted(wanted - there)
        if collection.items.count() + len(new) > MAX_ITEMS:
            raise ValidationError(
                f"A collection holds at most {MAX_ITEMS} videos; “{collection.name}” has room "
                f"for {max(0, MAX_ITEMS - collection.items.count())} more."
            )
        # ignore_conflicts: a teammate adding the same video at the same moment is not an error.
        CollectionItem.objects.bulk_create(
            [CollectionItem(collection=collection, video_id=pk, added_by=user) for pk in new],
            ignore_conflicts=True,
        )
    return len(new), len(there)


def remove_videos(*, user: User, collection: Collection, video_ids: Iterable[int]) -> int:
    """Take videos out of a collection (not out of the dashboard); how many were in it."""
    _require_visible(user, collection)
    removed, _ = CollectionItem.objects.filter(
        collection=collection, video_id__in=list(video_ids)
    ).delete()
    return removed


def _require_visible(user: User, collection: Collection) -> None:
    # The views find the collection through collections_visible_to already (a 404 otherwise);
    # this guards every other caller, so the rule cannot be skipped.
    if not collections_visible_to(user).filter(pk=collection.pk).exists():
        raise PermissionDenied("This collection is not shared with you.")


def collection_videos(collection: Collection) -> QuerySet[Video]:
    """Its videos in the order they were added, each as a gallery card shows it (its charge
    and its retry from with_retries, in the same query)."""
    added = CollectionItem.objects.filter(collection=collection, video=OuterRef("pk"))
    return (
        with_retries(Video.objects.select_related("owner", "provider", "source"))
        .filter(collections=collection)
        .annotate(added_at=Subquery(added.values("added_at")[:1]))
        .order_by("added_at", "pk")
    )
