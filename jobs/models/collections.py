"""Collections of videos (private or shared with a team) and read-only share links."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from jobs.models.common import owner_or_staff
from jobs.models.videos import Video


class Collection(models.Model):
    """A named set of videos. Private to its owner unless shared with a team (a Django group)."""

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collections"
    )
    team = models.ForeignKey(
        Group,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="collections",
        help_text="Shared with this team; empty: private to its owner.",
    )
    videos = models.ManyToManyField(Video, through="CollectionItem", related_name="collections")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="collection_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("jobs:collection", args=[self.pk])

    def can_be_managed_by(self, user: AbstractBaseUser | AnonymousUser) -> bool:
        return owner_or_staff(self.owner_id, user)


class CollectionItem(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="items")
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(default=timezone.now)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["added_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["collection", "video"], name="collection_item_once")
        ]

    def __str__(self) -> str:
        return f"#{self.video_id} in {self.collection_id}"


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits: unguessable, and safe in a URL


class ShareLink(models.Model):
    """A read-only page of one video or one collection for people outside the team."""

    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    video = models.ForeignKey(
        Video, on_delete=models.CASCADE, null=True, blank=True, related_name="share_links"
    )
    collection = models.ForeignKey(
        Collection, on_delete=models.CASCADE, null=True, blank=True, related_name="share_links"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_links"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    # django.contrib.auth.hashers.make_password of the optional password; "" = none.
    password = models.CharField(max_length=200, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(video__isnull=False) & Q(collection__isnull=True))
                | (Q(video__isnull=True) & Q(collection__isnull=False)),
                name="share_link_one_target",
            )
        ]

    def __str__(self) -> str:
        return f"Share link {self.pk} to {self.video or self.collection}"

    def get_absolute_url(self) -> str:
        return reverse("jobs:shared", args=[self.token])
