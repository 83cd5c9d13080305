"""Each user's own settings for the pages."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Profile(models.Model):
    """Remembered per user, not per browser: the same view on the phone and the desktop."""

    class View(models.TextChoices):
        TABLE = "table", "Table"
        GALLERY = "gallery", "Gallery"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    view = models.CharField(max_length=10, choices=View, default=View.TABLE)

    def __str__(self) -> str:
        return f"{self.user}: {self.get_view_display()}"
