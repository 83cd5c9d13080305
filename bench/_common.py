"""Shared helpers for the reliability benches (soak, crash, concurrency).

Each bench is a driver: it starts its own simulator and throwaway database, sets Django up
in-process against that database (to create fixtures and to read the outcome), and runs the
real workers (`manage.py track_videos`, `manage.py db_worker`) as subprocesses, exactly as a
deployment does. Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import requests

if TYPE_CHECKING:
    from jobs.models import Provider, Video

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
API_KEY_ENV = "BENCH_API_KEY"
API_KEY = "sk-bench-" + secrets.token_hex(8)
# Remixes inherit the source's length and size, and the simulator encodes a real MP4 for each
# archived job: the shortest, smallest sources keep a 500-job soak CPU-bound on Django, not on
# the fake provider's encoder.
CHEAP_SIZES = ("720x1280", "1280x720")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM (a runner's timeout) unwinds like Ctrl-C: workers, simulator and the throwaway
    database are cleaned up by the `finally` blocks instead of being left behind."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


# --- the simulator ----------------------------------------------------------------------------


@dataclass
class Sim:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    root: str = field(init=False)
    base_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/v1"

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = requests.request(method, f"{self.root}/_sim/{path}", json=body, timeout=30)
        r.raise_for_status()
        return r.json()

    def configure(self, **settings: Any) -> dict[str, Any]:
        return dict(self.control("POST", "config", settings))

    def script(self, fault: str, count: int = 1, **match: str) -> None:
        self.control("POST", "faults/next", {"fault": fault, "count": count, **match})

    def stats(self) -> dict[str, Any]:
        return dict(self.control("GET", "stats"))

    def seed(self, count: int) -> list[dict[str, Any]]:
        return list(self.control("POST", "seed", {"count": count})["data"])

    def content_size(self, video_id: str, variant: str) -> int:
        """The full size of an asset at the provider (a one-byte range request)."""
        r = requests.get(
            f"{self.base_url}/videos/{video_id}/content",
            params={"variant": variant},
            headers={"Authorization": f"Bearer {API_KEY}", "Range": "bytes=0-0"},
            timeout=60,
        )
        r.raise_for_status()
        return int(r.headers["Content-Range"].rsplit("/", 1)[1])

    def stop(self) -> None:
        stop_process(self.proc)


def start_simulator(data_dir: Path, *args: str, log_file: IO[bytes] | None = None) -> Sim:
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, "-m", "simulator", "--host", "127.0.0.1", "--port", str(port)]
        + ["--data-dir", str(data_dir), "--api-key", API_KEY, *args],
        cwd=ROOT,
        stdout=log_file or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log_file else None,
    )
    sim = Sim(proc, port, data_dir)
    if not wait_until(lambda: _listening(port) or proc.poll() is not None, 20):
        proc.kill()
        raise RuntimeError("the simulator did not start within 20 s")
    if proc.poll() is not None:
        raise RuntimeError(f"the simulator exited with {proc.returncode}")
    return sim


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# --- a throwaway database ---------------------------------------------------------------------


@contextlib.contextmanager
def throwaway_database(workdir: Path, server_url: str | None) -> Iterator[str]:
    """A database URL nobody else uses, removed afterwards.

    Given a PostgreSQL URL, a fresh database is created on that server (and dropped at the
    end), so pointing a bench at a real server never touches the database named in the URL.
    Otherwise it is a SQLite file in the work directory.
    """
    if not server_url or not server_url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"
        return
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def is_postgres(url: str | None) -> bool:
    return bool(url and url.startswith(("postgres://", "postgresql://")))


# --- Django, in this process and in worker processes -----------------------------------------


def django_env(database_url: str, media_root: Path, **extra: str) -> dict[str, str]:
    """The environment for this process and every manage.py it starts (settings read env)."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "remixsite.settings",
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(media_root),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "0",
            API_KEY_ENV: API_KEY,
            # The driver enqueues nothing a worker would run unless a bench asks for it.
            "TASKS_BACKEND": "django.tasks.backends.dummy.DummyBackend",
            "LOG_LEVEL": "WARNING",
            "TRACKER_IDLE_SECONDS": "0.2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def setup_django(env: dict[str, str]) -> None:
    """Point this process at the bench database and create the schema."""
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def start_manage(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as out:
        return subprocess.Popen(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM (a tracker finishes its batch), then SIGKILL if it does not go in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="remix-bench-"))
    try:
        yield path
    finally:
        if keep:
            log(f"kept {path}")
        else:
            import shutil

            shutil.rmtree(path, ignore_errors=True)


# --- fixtures ---------------------------------------------------------------------------------


def make_provider(sim: Sim, **fields: Any) -> Provider:
    from jobs.management.commands.seed_demo import seed_catalog
    from jobs.models import Provider

    provider = Provider.objects.create(
        name="Bench simulator",
        base_url=sim.base_url,
        api_key_env=API_KEY_ENV,
        is_default=True,
        **fields,
    )
    seed_catalog(provider)
    return provider


def make_sources(sim: Sim, provider: Provider, count: int) -> list[Video]:
    """Completed videos to remix, imported the way an operator would (faults must be off).

    They are fixtures, not part of the measurement: marked as needing no archive, so the
    workers' effort and the provider's counters are spent on the remixes alone.
    """
    from jobs import services
    from jobs.models import Video

    seeded = sim.seed(max(3 * count, 12))
    cheap = [v for v in seeded if v["seconds"] == "4" and v["size"] in CHEAP_SIZES]
    chosen = (cheap + [v for v in seeded if v not in cheap])[:count]
    sources = [services.import_by_id(provider=provider, video_id=v["id"])[0] for v in chosen]
    Video.objects.filter(pk__in=[s.pk for s in sources]).update(
        asset_state=Video.Assets.NONE, next_poll_at=None
    )
    return sources


def bench_user() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("bench", password=secrets.token_hex(16))


# --- outcome ----------------------------------------------------------------------------------


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


def open_count(keys: list[uuid.UUID]) -> int:
    """How many of these actions still have work left (or no row at all)."""
    from jobs.models import Video

    rows = Video.objects.filter(idempotency_key__in=keys)
    left = sum(1 for v in rows.only("status", "submission", "next_poll_at") if not settled(v))
    return left + (len(keys) - rows.count())


def wait_for_settled(keys: list[uuid.UUID], deadline: float, label: str) -> int:
    """Poll the database until every action is settled or the deadline passes."""
    from django.db import close_old_connections

    last_report = 0.0
    left = len(keys)
    while time.monotonic() < deadline:
        close_old_connections()
        left = open_count(keys)
        if left == 0:
            return 0
        if time.monotonic() - last_report > 15:
            log(f"{label}: {len(keys) - left}/{len(keys)} settled")
            last_report = time.monotonic()
        time.sleep(0.5)
    return left


def assess(
    sim: Sim, provider: Provider, prompts: dict[uuid.UUID, str], check_files: bool = True
) -> Outcome:
    """Compare the local rows with the provider's own records; faults must be off by now.

    lost: an action without exactly one settled local job that agrees with the provider.
    duplicated: provider jobs beyond one per action (jobs_created vs the rows we submitted,
    and the same prompt created twice), plus local rows sharing a prompt.
    stuck: actions not settled.
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
            if check_files:
                out.problems.extend(_archive_problems(sim, video))
    out.bad_archives = sum(1 for p in out.problems if p.startswith("archive"))
    return out


def _archive_problems(sim: Sim, video: Video) -> list[str]:
    """An archived row must point at whole files: same size as the provider's asset."""
    from django.conf import settings

    problems = []
    for variant, file in (
        ("video", video.video_file),
        ("thumbnail", video.thumbnail_file),
        ("spritesheet", video.spritesheet_file),
    ):
        path = Path(settings.MEDIA_ROOT) / file.name if file else None
        if path is None or not path.is_file():
            problems.append(f"archive: #{video.pk} {variant} missing ({file.name!r})")
            continue
        expected = sim.content_size(video.video_id or "", variant)
        if path.stat().st_size != expected:
            problems.append(
                f"archive: #{video.pk} {variant} is {path.stat().st_size} bytes, "
                f"the provider's is {expected}"
            )
    return problems


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
