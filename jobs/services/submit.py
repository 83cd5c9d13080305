"""Recording what a user asks for: create, remix, edit, extension, a batch of remixes, a retry.

The row is written before any HTTP call, so the prompt is never lost; the web request does not
talk to the provider at all (the worker does), so it never waits on provider retries. Each
form carries an idempotency key: the same key always yields the same job.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs import lifecycle, tasks
from jobs.lib.images import check_reference_image
from jobs.lib.prompts import BATCH_MAX_JOBS, clean_prompt
from jobs.models import Batch, CatalogEntry, Provider, StatusChange, Video
from jobs.selectors import estimate_cost, extension_lengths
from jobs.services.audit import record
from jobs.services.budgets import check_budget

# What each kind of job asks of the provider (Provider.require), and its name in messages.
CAPABILITY = {
    Video.Kind.CREATE: "create",
    Video.Kind.REMIX: "remix",
    Video.Kind.EDIT: "edit",
    Video.Kind.EXTENSION: "extend",
}
WHAT = {
    Video.Kind.CREATE: "video",
    Video.Kind.REMIX: "remix",
    Video.Kind.EDIT: "edit",
    Video.Kind.EXTENSION: "extension",
}
VERB = {Video.Kind.REMIX: "remixed", Video.Kind.EDIT: "edited", Video.Kind.EXTENSION: "extended"}


def derive_refusal(source: Video, kind: str) -> str:
    """Why `source` cannot be remixed, edited or extended (kind), in words; "" if it can."""
    try:
        source.provider.require(CAPABILITY[Video.Kind(kind)])
    except ValidationError as exc:
        return " ".join(exc.messages)
    if source.status != Video.Status.COMPLETED or not source.video_id:
        return f"Only a completed video can be {VERB[Video.Kind(kind)]}."
    return ""


def derive_refusals(video: Video) -> dict[str, str] | None:
    """For a completed video's page: {"edit": words or "", "extend": …}; None otherwise."""
    if video.status != Video.Status.COMPLETED:
        return None
    return {
        "edit": derive_refusal(video, Video.Kind.EDIT),
        "extend": derive_refusal(video, Video.Kind.EXTENSION),
    }


def submit_remix(
    *, user: User, source: Video, prompt: str, key: uuid.UUID, batch: Batch | None = None
) -> Video:
    """Record a remix of a completed video and queue its submission."""
    return _derive(
        user=user, source=source, kind=Video.Kind.REMIX, prompt=prompt, key=key, batch=batch
    )


def submit_edit(*, user: User, source: Video, prompt: str, key: uuid.UUID) -> Video:
    """Record an edit of a completed video (POST /videos/edits) and queue its submission."""
    return _derive(user=user, source=source, kind=Video.Kind.EDIT, prompt=prompt, key=key)


def submit_extension(
    *, user: User, source: Video, prompt: str, seconds: str, key: uuid.UUID
) -> Video:
    """Record an extension of a completed video by `seconds` more (POST /videos/extensions).

    Its `seconds` is the stitched total (the source's plus the added part), as the provider
    reports it; the cost counts only the added seconds, the part that is generated.
    """
    return _derive(
        user=user,
        source=source,
        kind=Video.Kind.EXTENSION,
        prompt=prompt,
        key=key,
        added=str(seconds).strip(),
    )


def _derive(
    *,
    user: User,
    source: Video,
    kind: Video.Kind,
    prompt: str,
    key: uuid.UUID,
    added: str = "",
    batch: Batch | None = None,
) -> Video:
    """A remix, edit or extension of a completed video: same model and size as the source."""
    prompt = clean_prompt(prompt)
    if refusal := derive_refusal(source, kind):
        raise ValidationError(refusal)
    if kind == Video.Kind.EXTENSION and added not in (lengths := extension_lengths(source)):
        raise ValidationError(
            {"seconds": f"An extension of {source.model} adds {_one_of(lengths)} seconds."}
        )
    provider = source.provider
    return _record(
        user=user,
        key=key,
        provider=provider,
        batch=batch,
        defaults={
            "source": source,
            "kind": kind,
            "prompt": prompt,
            "model": source.model,
            "size": source.size,
            "seconds": stitched_seconds(source.seconds, added) if added else source.seconds,
            "added_seconds": added,
            "remixed_from_video_id": source.video_id,
            "cost_estimate": estimate_cost(
                provider, source.model, source.size, added or source.seconds
            )
            or Decimal("0"),
        },
    )


def _one_of(lengths: list[str]) -> str:
    """The allowed lengths in words: "4", or "one of 4, 8 or 12"."""
    if len(lengths) == 1:
        return lengths[0]
    return "one of " + ", ".join(lengths[:-1]) + f" or {lengths[-1]}"


def stitched_seconds(source_seconds: str, added: str) -> str:
    """An extension's length: the source's plus the added part (the provider's own figure
    replaces it once it answers; a source whose length is not a number keeps that)."""
    if source_seconds.isdigit():
        return str(int(source_seconds) + int(added))
    return source_seconds


def submit_create(
    *,
    user: User,
    provider: Provider,
    prompt: str,
    model: str,
    size: str,
    seconds: str,
    key: uuid.UUID,
    input_reference: File | None = None,
) -> Video:
    """Record a new video from a prompt (and optionally a first-frame image)."""
    prompt = clean_prompt(prompt)
    provider.require("create")
    entry = CatalogEntry.objects.filter(provider=provider, model=model, size=size).first()
    if entry is None or seconds not in entry.seconds:
        raise ValidationError(f"{model} does not offer {seconds} s at {size}.")
    if input_reference is not None:  # checked here, so no caller can skip it
        input_reference.name = "reference" + check_reference_image(input_reference, size)
    # One transaction: the worker is only told (on commit) once the reference is saved too.
    with transaction.atomic():
        video = _record(
            user=user,
            key=key,
            provider=provider,
            defaults={
                "prompt": prompt,
                "model": model,
                "size": size,
                "seconds": seconds,
                "cost_estimate": entry.price_per_second * int(seconds),
            },
        )
        if input_reference is not None and not video.input_reference:
            video.input_reference.save(input_reference.name or "reference", input_reference)
    return video


def batch_job_key(key: uuid.UUID, index: int) -> uuid.UUID:
    """Deterministic per-job key: the same form posted twice finds the same jobs."""
    return uuid.uuid5(key, str(index))


def submit_batch(*, user: User, source: Video, prompts: list[str], key: uuid.UUID) -> Batch:
    """Several remixes of one source, each its own job, grouped as a Batch. All or nothing."""
    if not prompts:
        raise ValidationError({"prompts": "Write at least one prompt, one per line."})
    if len(prompts) > BATCH_MAX_JOBS:
        raise ValidationError(
            {"prompts": f"That is {len(prompts)} jobs; a batch holds at most {BATCH_MAX_JOBS}."}
        )
    cleaned = []
    for number, prompt in enumerate(prompts, 1):
        try:
            cleaned.append(clean_prompt(prompt))
        except ValidationError as exc:
            raise ValidationError(
                {"prompts": f"Prompt {number}: {' '.join(exc.messages)}"}
            ) from exc
    keys = [batch_job_key(key, i) for i in range(len(cleaned))]
    with transaction.atomic():
        batch, _ = Batch.objects.get_or_create(
            idempotency_key=key, defaults={"owner": user, "source": source}
        )
        if batch.owner_id != user.pk:
            raise PermissionDenied("That form belongs to somebody else.")
        new = len(keys) - Video.objects.filter(idempotency_key__in=keys).count()
        unit = estimate_cost(source.provider, source.model, source.size, source.seconds)
        # The whole batch against the budget first: otherwise it could stop half-way.
        check_budget(user=user, cost=(unit or Decimal("0")) * new, what=f"batch of {new} remixes")
        for job_key, prompt in zip(keys, cleaned, strict=True):
            submit_remix(user=user, source=source, prompt=prompt, key=job_key, batch=batch)
    return batch


def retry_video(*, user: User, video: Video, key: uuid.UUID, prompt: str | None = None) -> Video:
    """A failed job again, as a new job with the same inputs (prompt, settings, source, image).

    Once per failed job (the constraint `video_retried_once`): a second retry, from another
    tab or another person, finds the first and returns it ("Retried as #N"), even when two
    arrive at the same moment. `key` is minted when the Retry button is rendered, so a double
    click makes one retry. `prompt`, when given, replaces the failed job's prompt.
    """
    existing = Video.objects.filter(idempotency_key=key).first()
    if existing is not None:
        if existing.owner_id != user.pk:
            raise PermissionDenied("That form belongs to somebody else.")
        if existing.retry_of_id != video.pk:
            raise ValidationError("This form was already used for another job; reload the page.")
        return existing
    if not video.can_be_managed_by(user):
        raise PermissionDenied("Only the person who submitted it, or staff, can retry it.")
    earlier = Video.objects.filter(retry_of=video).first()
    if earlier is not None:
        return earlier
    if video.is_active or video.status != Video.Status.FAILED:
        raise ValidationError("Only a failed job can be retried.")
    prompt = video.prompt if prompt is None else clean_prompt(prompt)
    provider = video.provider
    remixed_from = video.remixed_from_video_id or (video.source.video_id if video.source else "")
    kind = retry_kind(video)
    provider.require(CAPABILITY[kind])  # the same kind again: an edit is retried as an edit
    if video.is_derived and not remixed_from:
        raise ValidationError(
            f"The source of this {WHAT[kind]} is unknown, so it cannot be retried."
        )
    if kind == Video.Kind.EXTENSION and not video.added_seconds.isdigit():
        raise ValidationError("How long this extension was to be is unknown; extend it anew.")
    # An extension is priced by the seconds it adds, not by the stitched total.
    billed = video.added_seconds if kind == Video.Kind.EXTENSION else video.seconds
    cost = estimate_cost(provider, video.model, video.size, billed)
    try:
        with transaction.atomic():  # the worker hears of it only once the image is copied too
            new = _record(
                user=user,
                key=key,
                provider=provider,
                batch=video.batch,
                defaults={
                    "prompt": prompt,
                    "model": video.model,
                    "size": video.size,
                    "seconds": video.seconds,
                    "source": video.source,
                    "kind": kind,
                    "added_seconds": video.added_seconds if kind == Video.Kind.EXTENSION else "",
                    "remixed_from_video_id": remixed_from or "",
                    "cost_estimate": video.cost_estimate if cost is None else cost,
                    "retry_of": video,
                },
            )
            if video.input_reference and not new.input_reference:
                _copy_reference(video, new)
    except IntegrityError:
        # Somebody else's retry of the same job committed first: that one is the retry.
        earlier = Video.objects.filter(retry_of=video).first()
        if earlier is None:
            raise
        return earlier
    return new


def retry_kind(video: Video) -> Video.Kind:
    """What a retry of `video` makes: its own kind (rows imported or made before `kind`
    existed say "create" for a remix: their source tells)."""
    kind = Video.Kind(video.kind)
    if kind == Video.Kind.CREATE and video.is_derived:
        return Video.Kind.REMIX
    return kind


def _copy_reference(video: Video, new: Video) -> None:
    try:
        with video.input_reference.open("rb") as image:
            new.input_reference.save(Path(video.input_reference.name or "").name, image)
    except FileNotFoundError:
        raise ValidationError(
            "The reference image of the failed job is gone, so it cannot be retried "
            "as it was; create a new video instead."
        ) from None


def retry_failed(*, user: User, batch: Batch, key: uuid.UUID) -> list[Video]:
    """Retry every failed member of a batch that has no retry yet. All or nothing.

    The whole set is checked against the budget first, like a new batch. Each retry's key is
    derived from the form's key and the failed job, so the same form posted twice makes no
    second set; a member retried meanwhile (another tab) is found, not retried again.
    """
    if not batch.can_be_managed_by(user):
        raise PermissionDenied("Only the person who made this batch, or staff, can retry it.")
    failed = list(
        batch.videos.select_related("provider", "source", "batch")
        .filter(status=Video.Status.FAILED, retries__isnull=True)
        .order_by("requested_at", "pk")
    )
    if not failed:
        raise ValidationError("No failed job in this batch is waiting for a retry.")
    keys = [uuid.uuid5(key, f"retry-{video.pk}") for video in failed]
    with transaction.atomic():
        fresh = [
            v for v, k in zip(failed, keys, strict=True)
            if not Video.objects.filter(idempotency_key=k).exists()
        ]  # fmt: skip
        total = sum(
            (
                estimate_cost(v.provider, v.model, v.size, v.seconds) or v.cost_estimate
                for v in fresh
            ),
            Decimal("0"),
        )
        check_budget(user=user, cost=total, what=f"retry of {len(fresh)} failed jobs")
        return [
            retry_video(user=user, video=video, key=job_key)
            for video, job_key in zip(failed, keys, strict=True)
        ]


def _record(
    *,
    user: User,
    key: uuid.UUID,
    provider: Provider,
    defaults: dict[str, Any],
    batch: Batch | None = None,
) -> Video:
    with transaction.atomic():
        if not Video.objects.filter(idempotency_key=key).exists():
            # A resubmitted form finds its job: nothing new is spent, so no budget check.
            kind = defaults.get("kind") or (
                Video.Kind.REMIX if defaults.get("remixed_from_video_id") else Video.Kind.CREATE
            )
            what = WHAT[Video.Kind(kind)]
            check_budget(user=user, cost=defaults.get("cost_estimate") or Decimal("0"), what=what)
        video, created = Video.objects.get_or_create(
            idempotency_key=key,
            defaults={
                **defaults,
                "owner": user,
                "provider": provider,
                "batch": batch,
                "next_poll_at": timezone.now(),
            },
        )
        if video.owner_id != user.pk:
            raise PermissionDenied("That form belongs to somebody else.")
        if created:
            lifecycle.open_charge(video)
            record(user, "retried" if video.retry_of_id else "submitted", video, kind=video.kind)
            lifecycle.history(
                video,
                "",
                Video.Status.QUEUED,
                via=StatusChange.Via.LOCAL,
                note="Recorded; waiting to submit",
            )
            tasks.nudge_on_commit(video.pk)
    return video
