"""Each user's remembered choices for the pages (today: table or gallery on the jobs list)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from jobs.models import Profile


def set_view(user: User, view: str) -> Profile:
    """Remember `view` for `user`, creating their profile on the first choice."""
    if view not in Profile.View.values:
        raise ValidationError({"view": f"Unknown view {view!r}."})
    profile, _ = Profile.objects.update_or_create(user=user, defaults={"view": view})
    return profile
