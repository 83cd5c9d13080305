"""Collections: the list with its create form, one collection's page (gallery, play all,
rename and share, delete). Adding and removing videos goes through the bulk endpoint."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from jobs import selectors
from jobs.models import Collection
from jobs.services import collections as service
from jobs.views.common import AuthedRequest, add_errors, status_for

PAGE_SIZE = 48  # cards per page of a collection's gallery


class CollectionForm(forms.Form):
    name = forms.CharField(max_length=service.NAME_MAX, label="Name")
    team = forms.ModelChoiceField(
        queryset=Group.objects.none(),
        required=False,
        empty_label="Nobody: private to you",
        label="Share with a team",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = service.team_choices(user)  # type: ignore[attr-defined]

    def save(self, user: User, collection: Collection | None = None) -> Collection | None:
        """Create or update through the service; None (with the errors on the form) if refused."""
        team = self.cleaned_data["team"]
        fields = {"user": user, "name": self.cleaned_data["name"], "team_id": team and team.pk}
        try:
            if collection is None:
                return service.create_collection(**fields)
            return service.update_collection(collection=collection, **fields)
        except ValidationError as exc:
            add_errors(self, exc)
            return None


@require_http_methods(["GET", "POST"])
def collection_list(request: AuthedRequest) -> HttpResponse:
    """Mine, my teams' (and for staff everybody's), with the form that makes a new one."""
    form = CollectionForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        made = form.save(request.user)
        if made is not None:
            messages.success(request, f"Made the collection “{made.name}”.")
            return redirect(made)
    ctx = {"lists": service.collections_page(request.user), "form": form}
    return render(request, "jobs/collections.html", ctx, status=status_for(request))


def _page_context(request: AuthedRequest, collection: Collection, form: CollectionForm) -> dict:
    videos = service.collection_videos(collection)
    page = Paginator(videos, PAGE_SIZE).get_page(request.GET.get("page"))
    for video in page.object_list:
        video.cost_charged = selectors.charged(video)  # type: ignore[attr-defined]  # for cards
    return {
        "collection": collection,
        "page": page,
        "videos": page.object_list,
        "playlist": [v for v in videos if v.playable],  # every page's, in order
        "can_manage": collection.can_be_managed_by(request.user),
        "form": form,
    }


def _visible(request: AuthedRequest, pk: int) -> Collection:
    # Outside the owner, the team and staff, a collection does not exist (404, not 403).
    return get_object_or_404(service.collections_visible_to(request.user), pk=pk)


@require_http_methods(["GET"])
def collection_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    collection = _visible(request, pk)
    initial = {"name": collection.name, "team": collection.team_id}
    form = CollectionForm(initial=initial, user=request.user)
    return render(request, "jobs/collection.html", _page_context(request, collection, form))


@require_POST
def collection_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    """Rename it, or change who shares it: the owner or staff (the service checks)."""
    collection = _visible(request, pk)
    form = CollectionForm(request.POST, user=request.user)
    if form.is_valid() and form.save(request.user, collection) is not None:
        messages.success(request, f"Saved the collection “{collection.name}”.")
        return redirect(collection)
    collection.refresh_from_db()  # the heading shows the name it still has
    ctx = _page_context(request, collection, form)
    return render(request, "jobs/collection.html", ctx, status=400)


@require_POST
def collection_delete(request: AuthedRequest, pk: int) -> HttpResponse:
    collection = _visible(request, pk)
    messages.success(request, service.delete_collection(user=request.user, collection=collection))
    return redirect("jobs:collections")
