"""Login throttling for every login form (ours and the admin's), as an authentication backend."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from jobs.models import LoginFailure


def _address(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def _recent_failures(username: str) -> int:
    since = timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    return LoginFailure.objects.filter(username=username, at__gte=since).count()


class ThrottledModelBackend(ModelBackend):
    """Refuses a username after LOGIN_FAILURE_LIMIT failures inside the window."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        if username and _recent_failures(username) >= settings.LOGIN_FAILURE_LIMIT:
            if request is not None and hasattr(request, "_messages"):
                minutes = settings.LOGIN_FAILURE_WINDOW_SECONDS // 60
                messages.error(
                    request,
                    f"Too many failed log-ins for this account; try again in {minutes} minutes.",
                )
            raise PermissionDenied("login throttled")
        return super().authenticate(request, username=username, password=password, **kwargs)


@receiver(user_login_failed)
def record_failure(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username", ""))[:150]
    if username:
        LoginFailure.objects.create(username=username, address=_address(request))


@receiver(user_logged_in)
def clear_failures(
    sender: Any, request: HttpRequest, user: AbstractBaseUser, **kwargs: Any
) -> None:
    LoginFailure.objects.filter(username=user.get_username()).delete()
