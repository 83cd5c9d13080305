"""Share links: the owner's page that makes and revokes them, and the public page behind one.

The public views (`shared`, `shared_media`) need no log-in and reach only what their link
shares: every lookup goes through jobs.services.sharing (open_link, shared_video).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from jobs.lib import storage
from jobs.models import Collection, ShareLink, Video
from jobs.services import sharing
from jobs.services.collections import collections_visible_to
from jobs.views.common import AuthedRequest, add_errors, status_for
from remixsite.throttle import client_ip


class ShareForm(forms.Form):
    expires = forms.ChoiceField(
        choices=sharing.EXPIRY_CHOICES, initial="7", label="Stops working after"
    )
    password = forms.CharField(
        required=False,
        max_length=sharing.PASSWORD_MAX,
        strip=False,
        label="Password (optional)",
        help_text="Whoever opens the link must type it. Leave empty for none.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class UnlockForm(forms.Form):
    password = forms.CharField(
        max_length=sharing.PASSWORD_MAX,
        strip=False,
        label="Password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


# --- the owner's side ------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def share_video(request: AuthedRequest, pk: int) -> HttpResponse:
    return _share_page(request, get_object_or_404(Video, pk=pk))


@require_http_methods(["GET", "POST"])
def share_collection(request: AuthedRequest, pk: int) -> HttpResponse:
    return _share_page(request, get_object_or_404(collections_visible_to(request.user), pk=pk))


def _share_page(request: AuthedRequest, target: Video | Collection) -> HttpResponse:
    """The links of one video or collection, and the form that makes another. Owner or staff
    only: a link is a key, so team members who can see the video do not see its links."""
    if not target.can_be_managed_by(request.user):
        raise PermissionDenied("Only the owner, or staff, can share this or see its links.")
    form = ShareForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            link = sharing.create_link(
                user=request.user,
                target=target,
                expires=form.cleaned_data["expires"],
                password=form.cleaned_data["password"],
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, "Made a share link. Copy it from the list below.")
            return redirect(f"{request.path}#link-{link.pk}")
    links = [
        (
            link,
            sharing.Opened(link, sharing.refusal_of(link)),
            request.build_absolute_uri(link.get_absolute_url()),
        )
        for link in sharing.links_for(target)
    ]
    ctx = {"target": target, "is_video": isinstance(target, Video), "form": form, "links": links}
    return render(request, "jobs/share.html", ctx, status=status_for(request))


@require_POST
def revoke(request: AuthedRequest, pk: int) -> HttpResponse:
    link = get_object_or_404(ShareLink.objects.select_related("video", "collection"), pk=pk)
    if sharing.revoke_link(user=request.user, link=link):
        messages.success(request, "Revoked the link: it no longer opens anything.")
    else:
        messages.info(request, "That link was already revoked.")
    target = sharing.link_target(link)
    name = "jobs:share-video" if isinstance(target, Video) else "jobs:share-collection"
    return redirect(name, target.pk)


# --- the public side: anyone with the token --------------------------------------------------


def _private(response: HttpResponseBase) -> HttpResponseBase:
    """Never cached by a proxy, never indexed; the token is the key, so keep it off the web."""
    patch_cache_control(response, private=True, no_store=True)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@login_not_required
@require_http_methods(["GET", "POST"])
def shared(request: HttpRequest, token: str) -> HttpResponseBase:
    """The read-only page of a link, behind its password when it has one."""
    opened = sharing.open_link(token)
    link = opened.link
    if opened.refusal:
        gone = {"words": opened.words, "refusal": opened.refusal}
        return _private(render(request, "jobs/share_gone.html", gone, status=410))
    if not sharing.is_unlocked(link, request.session):
        return _private(_unlock(request, link))
    videos = sharing.shared_videos(link)
    ctx = {"link": link, "videos": videos, "collection": link.collection}
    return _private(render(request, "jobs/share_page.html", ctx))


def _unlock(request: HttpRequest, link: ShareLink) -> HttpResponse:
    form = UnlockForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        problem = sharing.try_password(
            link,
            form.cleaned_data["password"],
            address=client_ip(request) or "unknown",
            session=request.session,
        )
        if not problem:
            return redirect(link.get_absolute_url())
        form.add_error("password", problem)
        status = 429 if problem.startswith("Too many") else 403
    elif request.method == "POST":
        status = 400
    return render(request, "jobs/share_password.html", {"form": form}, status=status)


@login_not_required
@require_GET
def shared_media(request: HttpRequest, token: str, pk: int, variant: str) -> HttpResponseBase:
    """A shared video's archived file, with Range so the player can seek (from disk, or the
    bucket behind a presigned redirect); nothing else."""
    opened = sharing.open_link(token)
    if opened.refusal:
        return _private(HttpResponse(opened.words, status=410, content_type="text/plain"))
    if not sharing.is_unlocked(opened.link, request.session):
        raise Http404
    name = sharing.shared_file(opened.link, pk, variant)
    # From a bucket, a redirect to a presigned URL: it outlives a revoke by at most its
    # AWS_QUERYSTRING_EXPIRE, and _private keeps the redirect itself from being reused.
    return _private(storage.serve(name, request.headers.get("Range", "")))
