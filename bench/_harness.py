"""Shared helpers for every script in bench/: processes, the simulator, Django, figures, verdicts.

Scripts put the repository root on sys.path and import it as `bench._harness`. Each
script is a driver: a `Workspace` holds its temp dir and every process it starts (the
simulator from `simulator.testing`, `manage.py` workers, runserver), and stops them all by pid
when the script ends, however it ends. Django is set up in the driver's process too, against a
throwaway database, to create fixtures and read the outcome (verdicts: `bench._verdict`).
Nothing here talks to anything but 127.0.0.1. Each script's LAST line is its verdict.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from simulator.testing import (
    NO_PROXY,
    Simulator,
    free_port,
    start_simulator,
    stop_process,
    wait_port,
)
from simulator.testing import SimulatorClient as SimulatorClient  # for p6's worker

ROOT = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from jobs.models import Provider, Video

PY = sys.executable
MANAGE = str(ROOT / "manage.py")
API_KEY = "sk-bench-" + secrets.token_hex(8)
# Which variable holds the key: the p* benches use the dashboard's default one, the reliability
# benches (soak, crash, concurrency) their own (a PROVIDER_KEY_* name, as settings require).
PERF_KEY_ENV = "SIMULATOR_API_KEY"
RELIABILITY_KEY_ENV = "PROVIDER_KEY_BENCH"
DUMMY_TASKS = "django.tasks.backends.dummy.DummyBackend"  # nothing enqueued ever runs
DB_TASKS = "django_tasks_db.DatabaseBackend"  # the deployed backend: `manage.py db_worker`
# Remixes inherit the source's length and size, and the simulator encodes a real MP4 for each
# archived job: the shortest, smallest sources keep a 500-job soak CPU-bound on Django, not on
# the fake provider's encoder.
CHEAP_SIZES = ("720x1280", "1280x720")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
    "--disable-component-update --disable-sync"
).split()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- figures ---------------------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else math.nan


def percentile(values: Iterable[float], p: float) -> float:
    """Nearest-rank percentile: with 10 samples p95 is the largest, never an interpolation."""
    data = sorted(values)
    if not data:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(data)))
    return data[rank - 1]


def goal(line: str, met: bool) -> int:
    """Print the goal line (always last) and return the script's exit status: 1 = missed."""
    print(f"{line} ({'met' if met else 'MISSED'})", flush=True)
    return 0 if met else 1


# --- processes -------------------------------------------------------------------------------


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def proc_status_kb(pid: int, field: str) -> int:
    """A `VmHWM`/`VmRSS` line of /proc/<pid>/status, in kB (peak RSS is VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Workspace:
    """A temp dir plus every process started in it; `close()` stops them all by pid.

    Kept afterwards (with its logs) when `keep` is true or BENCH_KEEP is set.
    """

    def __init__(self, name: str, keep: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir="/tmp"))
        self.keep = keep or bool(os.environ.get("BENCH_KEEP"))
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Workspace:
        exit_cleanly_on_sigterm()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def spawn(self, args: Sequence[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        with (self.dir / log).open("ab") as out:  # the child holds its own descriptor
            proc = subprocess.Popen(
                list(args), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def manage(self, env: dict[str, str], *args: str, log: str) -> subprocess.Popen[bytes]:
        return self.spawn([PY, MANAGE, *args], env, log)

    def tracker(
        self, env: dict[str, str], *args: str, log: str = "tracker.log"
    ) -> subprocess.Popen[bytes]:
        """A real `manage.py track_videos` subprocess."""
        return self.manage(env, "track_videos", *args, log=log)

    def simulator(self, *args: str, api_key: str | None = None) -> Simulator:
        """`python -m simulator` on a free port, data and log in this workspace."""
        port = free_port()
        sim = start_simulator(
            self.dir / f"sim-{port}",
            *args,
            port=port,
            api_key=api_key,
            log=self.dir / f"simulator-{port}.log",
            timeout=30,
            control_timeout=60,
        )
        self.procs.append(sim.proc)
        return sim

    def django(self, *, tasks_backend: str, api_key_env: str, **extra: str) -> dict[str, str]:
        """Django in this process on a fresh SQLite file here (media beside it); returns the
        environment for its manage.py children. See `django_env` for the arguments."""
        env = django_env(
            sqlite_url(self.dir / "db.sqlite3"),
            self.dir / "media",
            tasks_backend=tasks_backend,
            api_key_env=api_key_env,
            **extra,
        )
        setup_django(env)
        return env

    def web(self, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
        """`manage.py runserver` (threaded, no reloader) on 127.0.0.1; DEBUG so static files
        come from the finders rather than a collected manifest another engineer may be
        rebuilding."""
        port = free_port()
        proc = self.manage(
            {**env, "DEBUG": "1"}, "runserver", f"127.0.0.1:{port}", "--noreload", log="web.log"
        )
        wait_port(port, proc, timeout=30)
        return proc, f"http://127.0.0.1:{port}"

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
        stop_process(proc, timeout)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            try:
                self.stop(proc)
            except Exception:  # keep stopping the others
                proc.kill()

    def tail(self, log: str, lines: int = 15) -> str:
        path = self.dir / log
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        self.stop_all()
        if self.keep:
            log(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM (e.g. run_all's timeout) unwinds like Ctrl-C: the `finally` blocks and the
    workspace stop every child process and remove the throwaway database."""
    signal.signal(signal.SIGTERM, _exit_on_signal)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# --- databases and Django --------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def is_postgres(url: str | None) -> bool:
    return bool(url and url.startswith(("postgres://", "postgresql://")))


@contextmanager
def throwaway_database(workdir: Path, server_url: str | None) -> Iterator[str]:
    """A database URL nobody else uses, removed afterwards.

    Given a PostgreSQL URL, a fresh database is created on that server (and dropped at the
    end), so pointing a bench at a real server never touches the database named in the URL.
    Otherwise it is a SQLite file in the work directory.
    """
    if not server_url or not is_postgres(server_url):
        yield sqlite_url(workdir / "bench.sqlite3")
        return
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_env(
    database_url: str, media_root: Path, *, tasks_backend: str, api_key_env: str, **extra: str
) -> dict[str, str]:
    """The environment for this process and every manage.py it starts (settings read env).

    `api_key_env` is the variable that holds API_KEY (the providers' `api_key_env`).
    """
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "remixsite.settings",
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(media_root),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "0",
        "SECURE_COOKIES": "0",  # a browser talks plain http to 127.0.0.1
        "TASKS_BACKEND": tasks_backend,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        api_key_env: API_KEY,
        **extra,
    }


def setup_django(env: dict[str, str]) -> None:
    """Configure Django in this process with `env` and create the schema."""
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def make_provider(base_url: str, *, name: str, api_key_env: str, **fields: Any) -> Provider:
    from jobs.models import Provider
    from jobs.services.demo import seed_catalog

    provider = Provider.objects.create(
        name=name, base_url=base_url, api_key_env=api_key_env, **fields
    )
    seed_catalog(provider)
    return provider


HOOK_SECRET_ENV = "BENCH_WEBHOOK_SECRET"


@dataclass
class PollingAndWebhooks:
    """Two providers on one simulator: "polling" (no webhooks) and "hooked" (the simulator
    posts signed events to runserver's /webhooks/<pk>/), as `polling_and_webhooks` sets up."""

    sim: Simulator
    env: dict[str, str]
    user: User
    polling: Provider
    hooked: Provider
    web: str  # runserver's root URL


def polling_and_webhooks(
    ws: Workspace, *sim_args: str, tasks_backend: str, api_key_env: str, **polling: Any
) -> PollingAndWebhooks:
    """A simulator (`sim_args`), Django on the workspace's database with a user "alice", the
    two providers (`polling`: more fields for the polling one) and runserver."""
    sim = ws.simulator(*sim_args)
    secret = sim.configure(webhook_url="http://127.0.0.1:9/unset")["webhook_secret"]
    env = ws.django(
        tasks_backend=tasks_backend, api_key_env=api_key_env, **{HOOK_SECRET_ENV: secret}
    )
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("alice", password=None)
    plain = make_provider(sim.base_url, name="Polling", api_key_env=api_key_env, **polling)
    hooked = make_provider(
        sim.base_url,
        name="Webhooks",
        api_key_env=api_key_env,
        webhooks_enabled=True,
        webhook_secret_env=HOOK_SECRET_ENV,
    )
    _, web = ws.web(env)
    sim.configure(webhook_url=f"{web}/webhooks/{hooked.pk}/", webhook_secret=secret)
    return PollingAndWebhooks(sim, env, user, plain, hooked, web)


def submit_creates(user: User, provider: Provider, label: str, scene: str, count: int) -> list[int]:
    """`count` 4 s sora-2 clips submitted as a user would; returns their local pks."""
    from jobs.services.submit import submit_create

    return [
        submit_create(
            user=user,
            provider=provider,
            prompt=f"{label} {i}: {scene}",
            model="sora-2",
            size="720x1280",
            seconds="4",
            key=uuid.uuid4(),
        ).pk
        for i in range(count)
    ]


def session_cookie(user: User) -> str:
    """A logged-in session for `user`, written to the shared DB, for a browser or requests."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


@contextmanager
def chromium_page(cookie: str | None, base_url: str) -> Iterator[Any]:
    """A headless Debian Chromium page, logged in with `cookie` for `base_url`."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the scripts make
    # between browser steps are plain blocking calls, which Django would otherwise refuse.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            if cookie:
                context.add_cookies(
                    [{"name": "sessionid", "value": cookie, "url": base_url, "httpOnly": True}]
                )
            yield context.new_page()
        finally:
            browser.close()


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with NO_PROXY.open(request, timeout=30) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:  # 304 and friends arrive as errors here
        return exc.code, dict(exc.headers.items()), exc.read()


# --- the reliability benches: soak, crash, concurrency ---------------------------------------


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")


@dataclass
class Stack:
    """A reliability bench's world, set up by `reliability_stack`."""

    ws: Workspace
    database_url: str
    env: dict[str, str]  # for every manage.py worker
    sim: Simulator  # requires API_KEY

    def worker(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        return self.ws.manage(self.env, *args, log=log)

    def trackers(self, count: int) -> list[subprocess.Popen[bytes]]:
        """`count` track_videos processes, logging to tracker-<n>.log."""
        return [self.ws.tracker(self.env, log=f"tracker-{n}.log") for n in range(count)]

    def fixtures(self, sources: int) -> tuple[Provider, list[Video], User]:
        """The operator's set-up, not under test: a provider, completed sources, a user."""
        from django.contrib.auth import get_user_model

        provider = make_provider(
            self.sim.base_url,
            name="Bench simulator",
            api_key_env=RELIABILITY_KEY_ENV,
            is_default=True,
        )
        user = get_user_model().objects.create_user("bench", password=secrets.token_hex(16))
        return provider, make_sources(self.sim, provider, sources), user


@contextmanager
def reliability_stack(
    name: str,
    args: argparse.Namespace,
    sim_args: Sequence[str],
    *,
    tasks_backend: str,
    **env: str,
) -> Iterator[Stack]:
    """A workspace, a throwaway database (args.database_url's server, or SQLite) with Django
    set up on it here, and a simulator started with `sim_args`. At the end every process is
    stopped and every connection closed before the database is dropped."""
    with (
        Workspace(name, keep=args.keep) as ws,
        throwaway_database(ws.dir, args.database_url) as url,
    ):
        worker_env = django_env(
            url,
            ws.dir / "media",
            tasks_backend=tasks_backend,
            api_key_env=RELIABILITY_KEY_ENV,
            TRACKER_IDLE_SECONDS="0.2",
            **env,
        )
        setup_django(worker_env)
        try:
            yield Stack(ws, url, worker_env, ws.simulator(*sim_args, api_key=API_KEY))
        finally:
            ws.stop_all()
            from django.db import connections

            connections.close_all()  # so a PostgreSQL bench database can be dropped


def import_video(provider: Provider, video_id: str) -> Video:
    """A job at the provider, adopted here as the dashboard's import does it."""
    from jobs.services.imports import adopt

    return adopt(provider, provider.client().retrieve(video_id))[0]


def make_sources(sim: Simulator, provider: Provider, count: int) -> list[Video]:
    """Completed videos to remix, imported the way an operator would (faults must be off).

    They are fixtures, not part of the measurement: marked as needing no archive, so the
    workers' effort and the provider's counters are spent on the remixes alone.
    """
    from jobs.models import Video

    seeded = sim.seed(max(3 * count, 12), varied=True)
    cheap = [v for v in seeded if v["seconds"] == "4" and v["size"] in CHEAP_SIZES]
    chosen = (cheap + [v for v in seeded if v not in cheap])[:count]
    sources = [import_video(provider, v["id"]) for v in chosen]
    Video.objects.filter(pk__in=[s.pk for s in sources]).update(
        asset_state=Video.Assets.NONE, next_poll_at=None
    )
    return sources
