"""Reliability verdicts: what happened to a set of user actions, against the provider's records.

`assess` (crash.py, concurrency.py) reads the provider through the dashboard's own client;
`reconcile` (soak.py) reads the simulator's job list directly, never through the fault proxy,
and decodes every archived file. Both need Django set up (bench._harness.setup_django).
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._harness import API_KEY, NO_PROXY, log
from simulator.testing import Simulator

if TYPE_CHECKING:
    from jobs.models import Provider, Video


@dataclass
class Outcome:
    """What happened to a set of user actions (idempotency keys), as the benches report it."""

    actions: int
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    final: int = 0
    completed: int = 0
    failed: int = 0
    archived: int = 0
    bad_archives: int = 0
    jobs_created: int = 0
    submitted: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.stuck or self.bad_archives) and (
            self.final == self.actions
        )


def settled(video: Video) -> bool:
    """Final and nothing left to do (archived, expired, failed or rejected)."""
    return video.is_final and video.next_poll_at is None


def wait_for_settled(keys: list[uuid.UUID], deadline: float, label: str) -> int:
    """Poll the database until every action is settled or the deadline passes; returns how
    many still have work left (or no row at all)."""
    from django.db import close_old_connections

    from jobs.models import Video

    last_report = 0.0
    left = len(keys)
    while time.monotonic() < deadline:
        close_old_connections()
        rows = Video.objects.filter(idempotency_key__in=keys)
        done = rows.only("status", "submission", "next_poll_at")
        left = sum(1 for v in done if not settled(v)) + (len(keys) - rows.count())
        if left == 0:
            return 0
        if time.monotonic() - last_report > 15:
            log(f"{label}: {len(keys) - left}/{len(keys)} settled")
            last_report = time.monotonic()
        time.sleep(0.5)
    return left


def assess(sim: Simulator, provider: Provider, prompts: dict[uuid.UUID, str]) -> Outcome:
    """Compare the local rows with the provider's own records; faults must be off by now.

    lost: an action without exactly one settled local job that agrees with the provider.
    duplicated: provider jobs beyond one per action (jobs_created vs the rows we submitted,
    and the same prompt created twice), plus local rows sharing a prompt.
    stuck: actions not settled. Archived rows must point at whole files.
    """
    from jobs.models import Video

    out = Outcome(actions=len(prompts))
    stats = sim.stats()
    remote_by_id = {v.id: v for v in provider.client().iter_all(limit=100)}
    remote_prompts = Counter(v.prompt for v in remote_by_id.values())
    rows = {v.idempotency_key: v for v in Video.objects.filter(idempotency_key__in=list(prompts))}
    local_prompts = Counter(
        Video.objects.filter(prompt__in=list(prompts.values())).values_list("prompt", flat=True)
    )
    out.jobs_created = int(stats["jobs_created"])
    out.submitted = Video.objects.filter(
        provider=provider, submission=Video.Submission.SUBMITTED
    ).count()
    out.duplicated = max(out.jobs_created - out.submitted, 0)
    out.duplicated += sum(n - 1 for p, n in remote_prompts.items() if p in local_prompts and n > 1)
    out.duplicated += sum(n - 1 for n in local_prompts.values() if n > 1)
    for key, prompt in prompts.items():
        video = rows.get(key)
        if video is None:
            out.lost += 1
            out.problems.append(f"no row for action {key} ({prompt[:30]})")
            continue
        if not settled(video):
            out.stuck += 1
            out.problems.append(
                f"stuck: #{video.pk} {video.submission}/{video.status}/{video.asset_state} "
                f"next={video.next_poll_at} last_error={video.last_error[:120]!r}"
            )
            continue
        out.final += 1
        remote = remote_by_id.get(video.video_id or "")
        if remote is None or remote.status != video.status:
            out.lost += 1
            out.problems.append(
                f"disagrees: #{video.pk} local {video.submission}/{video.status} "
                f"{video.error_code!r}, provider {remote.status if remote else 'no such job'}"
            )
            continue
        out.completed += video.status == Video.Status.COMPLETED
        out.failed += video.status == Video.Status.FAILED
        if video.asset_state == Video.Assets.ARCHIVED:
            out.archived += 1
            out.problems.extend(_archive_problems(sim, video))
    out.bad_archives = sum(1 for p in out.problems if p.startswith("archive"))
    return out


def _archive_problems(sim: Simulator, video: Video) -> list[str]:
    """An archived row must point at whole, readable files: the provider's size, an MP4 that
    decodes to frames for the job's length, images Pillow can load."""
    from django.conf import settings

    problems = []
    for variant, file in (
        ("video", video.video_file),
        ("thumbnail", video.thumbnail_file),
        ("spritesheet", video.spritesheet_file),
    ):
        path = Path(settings.MEDIA_ROOT) / file.name if file and file.name else None
        if path is None or not path.is_file():
            problems.append(f"archive: #{video.pk} {variant} missing ({file.name!r})")
            continue
        expected = sim.content_size(video.video_id or "", variant)
        if path.stat().st_size != expected:
            problems.append(
                f"archive: #{video.pk} {variant} is {path.stat().st_size} bytes, "
                f"the provider's is {expected}"
            )
            continue
        why = decode_problem(path, variant, float(video.seconds or 0))
        if why:
            problems.append(f"archive: #{video.pk} {variant} {path.name}: {why}")
    return problems


def decode_problem(path: Path, variant: str, seconds: float) -> str:
    """Why the file is not a whole video (PyAV: every frame decoded, the length checked) or a
    whole image (Pillow: fully loaded); "" when it is."""
    try:
        if variant != "video":
            from PIL import Image

            with Image.open(path) as image:
                image.load()  # decodes every byte: a truncated file raises here
            return ""
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(video=0))
            rate = float(stream.average_rate or 0)
            length = (container.duration or 0) / 1_000_000
    except Exception as exc:  # PyAV and Pillow raise many kinds for a broken file
        return f"cannot be decoded ({type(exc).__name__}: {exc})"[:300]
    if frames < 1:
        return "no frame decodes"
    if seconds and (abs(length - seconds) > 0.5 or (rate and abs(frames / rate - seconds) > 0.5)):
        return f"{frames} frames at {rate:g} fps, {length:.2f} s long; the job is {seconds:g} s"
    return ""


def partial_files() -> list[Path]:
    from django.conf import settings

    return sorted((Path(settings.MEDIA_ROOT) / ".partial").glob("*.part"))


def repeated_transitions(keys: list[uuid.UUID]) -> int:
    """StatusChange rows recording the same transition of the same video more than once."""
    from django.db.models import Count

    from jobs.models import StatusChange

    return sum(
        row["n"] - 1
        for row in StatusChange.objects.filter(video__idempotency_key__in=keys)
        .values("video_id", "from_status", "to_status")
        .annotate(n=Count("id"))
        if row["n"] > 1
    )


# --- the soak's reconciliation, against the simulator's own job list -------------------------


def simulator_jobs(sim: Simulator, limit: int = 100, pages: int = 10_000) -> list[dict[str, Any]]:
    """Every job the simulator holds, paged from GET /v1/videos straight at the simulator."""
    jobs: list[dict[str, Any]] = []
    after = ""
    for _ in range(pages):
        query = f"?limit={limit}&order=asc" + (f"&after={after}" if after else "")
        request = urllib.request.Request(
            f"{sim.base_url}/videos{query}", headers={"Authorization": f"Bearer {API_KEY}"}
        )
        with NO_PROXY.open(request, timeout=60) as response:
            page = json.loads(response.read())
        jobs += page["data"]
        if not page["has_more"] or not page["data"]:
            return jobs
        after = page["last_id"]
    raise RuntimeError(f"the simulator's list did not end within {pages} pages")


@dataclass
class Reconciliation:
    """The soak's figures. Any of lost, duplicated, stuck, corrupt or unconfirmed above zero is
    a broken promise. Unarchived (completed, files given up on after ARCHIVE_MAX_ATTEMPTS, the
    row says so and the admin can archive again) is reported beside them."""

    actions: int
    lost: int = 0  # no row, never submitted, or not the provider's job / state
    duplicated: int = 0  # provider jobs for an action beyond the one its row points at
    stuck: int = 0  # still moving (or waiting to be sent) after the drain deadline
    corrupt: int = 0  # archived, but a file is missing, short or does not decode
    unarchived: int = 0  # completed, but the files were given up on (broken / expired)
    unconfirmed: int = 0  # "Could not confirm the submission": the user must decide
    completed: int = 0
    failed: int = 0
    archived: int = 0
    jobs_created: int = 0  # by the simulator's counter, fixtures excluded
    submitted: int = 0  # local rows that say they are at the provider
    problems: list[str] = field(default_factory=list)

    @property
    def broken_promises(self) -> int:
        return self.lost + self.duplicated + self.stuck + self.corrupt + self.unconfirmed

    def figures(self) -> str:
        names = "lost duplicated stuck corrupt unarchived unconfirmed completed failed archived"
        names += " jobs_created submitted"
        return " ".join(f"{name}={getattr(self, name)}" for name in names.split())


def reconcile(sim: Simulator, prompts: dict[uuid.UUID, str], fixtures: int) -> Reconciliation:
    """Each action (its form's key and its unique prompt) against its row and the simulator's
    jobs; faults must be off. `fixtures`: jobs the set-up created (not user actions)."""
    from jobs.models import Video

    out = Reconciliation(actions=len(prompts))
    remote = {job["id"]: job for job in simulator_jobs(sim)}
    by_prompt = Counter(job["prompt"] for job in remote.values())
    out.jobs_created = int(sim.stats()["jobs_created"]) - fixtures
    rows = {v.idempotency_key: v for v in Video.objects.filter(idempotency_key__in=list(prompts))}
    out.submitted = sum(1 for v in rows.values() if v.submission == Video.Submission.SUBMITTED)
    for key, prompt in prompts.items():
        video = rows.get(key)
        job = remote.get(video.video_id or "") if video is not None else None
        extra = by_prompt[prompt] - (1 if job is not None and job["prompt"] == prompt else 0)
        if extra > 0:
            out.duplicated += extra
            out.problems.append(
                f"duplicated: {prompt[:40]!r} made {by_prompt[prompt]} jobs at the provider, "
                f"row {'#' + str(video.pk) if video else 'none'} points at "
                f"{video.video_id if video else None}"
            )
        if video is None:
            out.lost += 1
            out.problems.append(f"lost: no row for {prompt[:40]!r} (key {key})")
            continue
        out.problems.extend(_classify(sim, out, video, job))
    out.corrupt = len({p.split()[1] for p in out.problems if p.startswith("archive:")})  # rows
    return out


def _classify(
    sim: Simulator, out: Reconciliation, video: Video, job: dict[str, Any] | None
) -> list[str]:
    """Count one action's row into `out`; returns the problems it shows."""
    from jobs.models import Video

    state = (
        f"#{video.pk} {video.submission}/{video.status}/{video.asset_state} "
        f"next={video.next_poll_at} error={video.error_code!r} "
        f"last_error={(video.last_error or video.error_message)[:160]!r}"
    )
    if video.submission == Video.Submission.UNCONFIRMED:
        out.unconfirmed += 1
        return [f"unconfirmed: {state}"]
    if not settled(video):
        out.stuck += 1
        return [f"stuck: {state}"]
    if video.submission != Video.Submission.SUBMITTED or job is None:
        out.lost += 1
        return [f"lost: never reached the provider as this row: {state}"]
    if job["status"] != video.status:
        out.lost += 1
        return [f"lost: local {state}, the provider says {job['status']}"]
    out.completed += video.status == Video.Status.COMPLETED
    out.failed += video.status == Video.Status.FAILED
    if video.status != Video.Status.COMPLETED:
        return []
    if video.asset_state != Video.Assets.ARCHIVED:
        out.unarchived += 1
        return [f"unarchived: {state}"]
    out.archived += 1
    return _archive_problems(sim, video)
