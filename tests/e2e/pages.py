"""Every app page, with the data each needs, for the accessibility and phone tests.

A page is (name, path, logged_in): the log-in, locked-out and 404 pages are seen logged out
too. The admin is Django's, not an app page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.urls import NoReverseMatch, reverse
from playwright.sync_api import Page, expect

from jobs.models import Provider, Video
from jobs.services.submit import submit_batch, submit_remix
from tests.conftest import Simulator, drive

from .conftest import archived

LOCK_USER = "mallory"  # a log-in that never works: five tries lock it (and the address) out


@dataclass(frozen=True)
class AppPage:
    name: str
    path: str
    logged_in: bool = True


def failed_remix(user: User, source: Video, simulator: Simulator) -> Video:
    """A remix the provider fails part-way through."""
    simulator.configure(fail_rate=1.0)
    video = submit_remix(user=user, source=source, prompt="this one fails", key=uuid.uuid4())
    drive(lambda: Video.objects.get(pk=video.pk).is_final, timeout=30)
    simulator.configure(fail_rate=0)
    video.refresh_from_db()
    assert video.status == Video.Status.FAILED, video.status
    return video


def optional(name: str, path_of: str, *args: object, query: str = "") -> list[AppPage]:
    """Pages another part of the issue adds (the batches list, say): listed once they exist."""
    try:
        return [AppPage(name, reverse(path_of, args=args) + query)]
    except NoReverseMatch:
        return []


def app_pages(alice: User, provider: Provider, simulator: Simulator) -> list[AppPage]:
    # The simulator edits and extends: the edit and extend pages show their forms.
    Provider.objects.filter(pk=provider.pk).update(can_edit=True, can_extend=True)
    first, second = archived(provider, simulator, 2)
    failed = failed_remix(alice, first, simulator)
    batch = submit_batch(
        user=alice, source=first, prompts=["in sepia", "as a watercolour"], key=uuid.uuid4()
    )
    drive(lambda: all(v.playable for v in Video.objects.filter(batch=batch)), timeout=30)
    return [
        AppPage("table", "/"),
        *optional("gallery", "jobs:list", query="?view=gallery"),
        AppPage("detail (completed)", first.get_absolute_url()),
        AppPage("detail (failed)", failed.get_absolute_url()),
        AppPage("remix", reverse("jobs:remix", args=[first.pk])),
        AppPage("edit", reverse("jobs:edit", args=[first.pk])),
        AppPage("extend", reverse("jobs:extend", args=[first.pk])),
        AppPage("batch form", reverse("jobs:batch-new", args=[first.pk])),
        AppPage("batch", reverse("jobs:batch", args=[batch.pk])),
        *optional("batches", "jobs:batches"),
        *optional("waiting for my review", "jobs:reviews"),
        AppPage("family", reverse("jobs:family", args=[first.pk])),
        AppPage("compare", f"{reverse('jobs:compare')}?ids={first.pk},{second.pk}"),
        AppPage("create", reverse("jobs:create")),
        AppPage("import", reverse("jobs:import")),
        AppPage("usage", reverse("jobs:usage")),
        AppPage("403", reverse("jobs:delete-confirm", args=[second.pk])),  # imported: staff only
        AppPage("404", "/videos/999999/"),
        AppPage("404 (logged out)", "/no/such/page/", logged_in=False),
        AppPage("login", "/login/", logged_in=False),
    ]


def lock_out(page: Page, tries: int = 5) -> None:
    """Fail to log in until django-axes locks this address out; ends on the locked-out page."""
    for _ in range(tries):
        page.goto("/login/")
        page.get_by_label("Username").fill(LOCK_USER)
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Log-in locked")).to_be_visible()
