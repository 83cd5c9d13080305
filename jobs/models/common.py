"""Rules shared by the model modules."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


def owner_or_staff(owner_id: int | None, user: AbstractBaseUser | AnonymousUser) -> bool:
    """The one rule for who may change a job or a batch."""
    return bool(getattr(user, "is_staff", False) or (owner_id is not None and owner_id == user.pk))
