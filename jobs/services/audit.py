"""The audit log's one writer: every service that acts for a person records it here."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models

from jobs.models import AuditEvent


def record(
    actor: AbstractBaseUser | AnonymousUser | None,
    action: str,
    target: models.Model,
    **detail: Any,
) -> AuditEvent:
    """One entry: who (None for the system), did what, to which row (named as it is now).

    Called inside the service's own transaction, so an action that rolls back leaves no entry.
    `detail` must be JSON-serialisable (ids, short strings, amounts as strings).
    """
    person = actor if actor is not None and actor.is_authenticated else None
    return AuditEvent.objects.create(
        actor_id=person.pk if person is not None else None,
        action=action,
        target_type=target._meta.model_name or target.__class__.__name__.lower(),
        target_id=str(target.pk or ""),
        target_repr=str(target)[:200],
        detail=detail,
    )
