"""Shared helpers for the bench/p*.py scripts: processes, the simulator, Django, statistics.

Everything here talks to 127.0.0.1 only and cleans up after itself: every process a script
starts is registered with a `Workspace` and stopped (by its own pid) when the script ends,
however it ends. Scripts print their figures; the LAST line of each is the goal line.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
MANAGE = str(ROOT / "manage.py")
API_KEY_ENV = "SIMULATOR_API_KEY"
API_KEY = "sk-bench"
SECRET_KEY = "bench-only-secret-key-not-for-production"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Never route 127.0.0.1 traffic through a proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --- statistics ------------------------------------------------------------------------------


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f} s")


def proc_status_kb(pid: int, field: str) -> int:
    """A `VmHWM`/`VmRSS` line of /proc/<pid>/status, in kB (peak RSS is VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Workspace:
    """A temp dir plus every process started in it; `close()` stops them all by pid."""

    def __init__(self, name: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir="/tmp"))
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Workspace:
        # A SIGTERM (e.g. run_all's timeout) must still stop our children.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def spawn(self, args: Sequence[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        out = open(self.dir / log, "wb")
        proc = subprocess.Popen(list(args), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        out.close()  # the child holds its own descriptor
        self.procs.append(proc)
        return proc

    def manage(self, env: dict[str, str], *args: str, log: str) -> subprocess.Popen[bytes]:
        return self.spawn([PY, MANAGE, *args], env, log)

    def tracker(
        self, env: dict[str, str], *args: str, log: str = "tracker.log"
    ) -> subprocess.Popen[bytes]:
        """A real `manage.py track_videos` subprocess."""
        return self.manage(env, "track_videos", *args, log=log)

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def tail(self, log: str, lines: int = 15) -> str:
        path = self.dir / log
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        for proc in reversed(self.procs):
            try:
                self.stop(proc)
            except Exception:  # keep stopping the others
                proc.kill()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# --- the simulator ---------------------------------------------------------------------------


class Simulator:
    """A `python -m simulator` process on 127.0.0.1 and its /_sim control endpoints."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, data_dir: Path) -> None:
        self.proc, self.port, self.data_dir = proc, port, data_dir
        self.root = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.root}/v1"

    def control(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.root}/_sim/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with _opener.open(request, timeout=60) as response:
            return json.loads(response.read())

    def configure(self, **settings: Any) -> dict[str, Any]:
        return dict(self.control("POST", "config", settings))

    def stats(self) -> dict[str, Any]:
        return dict(self.control("GET", "stats"))

    def retrieves(self, video_id: str) -> int:
        return int(self.stats()["per_video"].get(video_id, {}).get("retrieve", 0))

    def completion_times(self) -> dict[str, float]:
        """Exact terminal times (unix seconds, float) from the simulator's own store.

        The API's completed_at is whole seconds; the store keeps `created + duration` to the
        microsecond, and reading the file sends no request that would count as a poll.
        """
        uri = f"file:{self.data_dir / 'simulator.sqlite3'}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=10) as db:
            rows = db.execute("SELECT id, terminal FROM videos").fetchall()
        return {str(vid): float(terminal) for vid, terminal in rows}


def start_simulator(ws: Workspace, *args: str, port: int | None = None) -> Simulator:
    port = port or free_port()
    data_dir = ws.dir / f"sim-{port}"
    proc = ws.spawn(
        [
            PY,
            "-m",
            "simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *args,
        ],
        {**os.environ, "PYTHONUNBUFFERED": "1"},
        f"simulator-{port}.log",
    )
    wait_port(port, proc)
    return Simulator(proc, port, data_dir)


# --- Django ----------------------------------------------------------------------------------


def django_env(db_path: Path, **extra: str) -> dict[str, str]:
    """Environment for this process and its manage.py children: one throwaway SQLite file."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db_path}",
        "SECRET_KEY": SECRET_KEY,
        "DEBUG": "0",
        "SECURE_COOKIES": "0",  # the browser talks plain http to 127.0.0.1
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "MEDIA_ROOT": str(db_path.parent / "media"),
        API_KEY_ENV: API_KEY,
        "DJANGO_SETTINGS_MODULE": "remixsite.settings",
    }
    env.update(extra)
    return env


def setup_django(env: dict[str, str]) -> None:
    """Configure Django in this process with `env` and create the schema."""
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def make_provider(base_url: str, name: str = "Simulator", **fields: Any) -> Any:
    from jobs.management.commands.seed_demo import seed_catalog
    from jobs.models import Provider

    provider = Provider.objects.create(
        name=name, base_url=base_url, api_key_env=API_KEY_ENV, **fields
    )
    seed_catalog(provider)
    return provider


def session_cookie(user: Any) -> str:
    """A logged-in session for `user`, written to the shared DB, for a browser or requests."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


def start_web(ws: Workspace, env: dict[str, str], port: int | None = None) -> tuple[Any, str]:
    """`manage.py runserver` (threaded, no reloader) on 127.0.0.1; DEBUG so static files come
    from the finders rather than a collected manifest another engineer may be rebuilding."""
    port = port or free_port()
    proc = ws.manage(
        {**env, "DEBUG": "1"}, "runserver", f"127.0.0.1:{port}", "--noreload", log="web.log"
    )
    wait_port(port, proc)
    return proc, f"http://127.0.0.1:{port}"


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
        with _opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:  # 304 and friends arrive as errors here
        return exc.code, dict(exc.headers.items()), exc.read()
