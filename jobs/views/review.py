"""Team review on the detail page: comments at a moment (write, reply, edit, remove), review
requests and verdicts, and the "Waiting for my review" page.

Each POST answers an htmx request with its partial (templates/jobs/review_panel.html#comments
or #review-state) and a plain form post with a redirect back to the video and a message.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from jobs import review_reads
from jobs.models import COMMENT_MAX_LENGTH, Comment, Video
from jobs.services import review
from jobs.services.comments import add_comment, edit_comment, remove_comment, video_length
from jobs.views.common import AuthedRequest, add_errors, revalidate

PANEL = "jobs/review_panel.html"
NUMBER = "Give the moment in seconds from the start, such as 7.5."


class CommentForm(forms.Form):
    # Not required and not stripped here: the service says in words what is wrong with a body.
    body = forms.CharField(required=False, strip=False)
    timecode = forms.FloatField(
        required=False, min_value=0, error_messages={"invalid": NUMBER, "min_value": NUMBER}
    )
    whole = forms.BooleanField(required=False)  # "on the whole video": the moment is ignored
    parent = forms.IntegerField(required=False, min_value=1)


def comments_context(video: Video, user: User) -> dict[str, object]:
    threads = review_reads.comment_threads(video)
    for comment in [c for t in threads for c in [t, *t.standing_replies]]:  # type: ignore[attr-defined]
        comment.editable = comment.can_be_edited_by(user)
        comment.removable = comment.can_be_removed_by(user)
    return {
        "video": video,
        "threads": threads,
        "comment_max": COMMENT_MAX_LENGTH,
        "video_length": video_length(video),
    }


def state_context(video: Video, user: User) -> dict[str, object]:
    verdicts = review_reads.verdicts(video)
    refusal = review.request_refusal(video, user)
    asked = {r.reviewer_id for r in verdicts}
    return {
        "video": video,
        "verdicts": verdicts,
        "my_verdict": next((r for r in verdicts if r.reviewer_id == user.pk), None),
        "verdict_refusal": review.verdict_refusal(video, user),
        "request_refusal": refusal,
        "candidates": [] if refusal else review_reads.review_candidates(video, exclude=asked),
    }


def review_panel(video: Video, user: User) -> dict[str, object]:
    """The detail page's review card: its state and verdicts, and the comments."""
    return {**comments_context(video, user), **state_context(video, user)}


def _answer(
    request: AuthedRequest, video: Video, partial: str, done: str, form: forms.Form | None = None
) -> HttpResponse:
    """The refreshed partial for htmx (200 even with errors: htmx swaps only 2xx), else back."""
    failed = form if form is not None and form.errors else None
    if request.htmx:
        context = (comments_context if partial == "comments" else state_context)(
            video, request.user
        )
        if failed is not None:  # the failed form shows its words and keeps the text typed
            context["form"] = failed
            context["failed_parent"] = _int(failed.data.get("parent"))
            context["failed_edit"] = _int(failed.data.get("edit"))
        return revalidate(render(request, f"{PANEL}#{partial}", context))
    if failed is not None:
        messages.error(request, " ".join(str(m) for ms in failed.errors.values() for m in ms))
    else:
        messages.success(request, done)
    return redirect(f"{video.get_absolute_url()}#{partial}")


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


@require_GET
def comments(request: AuthedRequest, pk: int) -> HttpResponse:
    video = get_object_or_404(Video, pk=pk)
    return revalidate(render(request, f"{PANEL}#comments", comments_context(video, request.user)))


@require_POST
def comment_create(request: AuthedRequest, pk: int) -> HttpResponse:
    """A new comment at the player's moment (or on the whole video), or a reply in a thread."""
    video = get_object_or_404(Video, pk=pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        parent = (
            get_object_or_404(Comment, pk=data["parent"], video=video) if data["parent"] else None
        )
        try:
            add_comment(
                user=request.user,
                video=video,
                body=data["body"],
                timecode=None if data["whole"] else data["timecode"],
                parent=parent,
            )
        except ValidationError as exc:
            add_errors(form, exc)
    return _answer(request, video, "comments", "Comment added.", form)


@require_POST
def comment_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    comment = get_object_or_404(Comment.objects.select_related("video"), pk=pk)
    data = request.POST.copy()
    data["edit"] = str(comment.pk)  # which comment's form shows the errors
    form = CommentForm(data)
    form.is_valid()
    try:
        edit_comment(user=request.user, comment=comment, body=request.POST.get("body", ""))
    except ValidationError as exc:
        add_errors(form, exc)
    return _answer(request, comment.video, "comments", "Comment saved.", form)


@require_POST
def comment_remove(request: AuthedRequest, pk: int) -> HttpResponse:
    comment = get_object_or_404(Comment.objects.select_related("video"), pk=pk)
    remove_comment(user=request.user, comment=comment)
    return _answer(request, comment.video, "comments", "Comment removed.")


def _refusal(exc: ValidationError) -> forms.Form:
    form = forms.Form()
    form.add_error(None, exc)
    return form


@require_POST
def verdict(request: AuthedRequest, pk: int) -> HttpResponse:
    """My verdict on the video: approved or changes requested (replacing my earlier one)."""
    video = get_object_or_404(Video, pk=pk)
    try:
        given = review.set_verdict(
            user=request.user, video=video, verdict=request.POST.get("verdict", "")
        )
    except ValidationError as exc:
        return _answer(request, video, "review-state", "", _refusal(exc))
    done = f"Your verdict on #{video.pk}: {given.get_verdict_display()}."
    return _answer(request, video, "review-state", done)


@require_POST
def request_review(request: AuthedRequest, pk: int) -> HttpResponse:
    """The owner (or staff) asks the team members ticked in the form for a verdict."""
    video = get_object_or_404(Video, pk=pk)
    picked = request.POST.getlist("reviewers")[: review.MAX_REVIEWERS + 1]
    people = User.objects.filter(pk__in=[int(v) for v in picked if v.isdigit()])
    try:
        new = review.request_review(user=request.user, video=video, reviewers=people)
    except ValidationError as exc:
        return _answer(request, video, "review-state", "", _refusal(exc))
    names = ", ".join(r.reviewer.get_username() for r in new)
    done = f"Asked {names} for a review." if new else "They had already been asked."
    return _answer(request, video, "review-state", done)


@require_GET
def waiting(request: AuthedRequest) -> HttpResponse:
    """Videos waiting for my verdict, the longest-waiting first."""
    rows = review_reads.waiting_for(request.user)[:200]
    return render(request, "jobs/review_waiting.html", {"rows": rows})
