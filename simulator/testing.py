"""Run and drive a `python -m simulator` process: the harness the tests and the benches share.

The simulator never imports this module. `start_simulator` starts one on 127.0.0.1 and waits
until it listens; the `Simulator` it returns knows its URLs and wraps the /_sim control
endpoints (configure, script faults, seed, expire, stats, reset). Standard library only, and
never through a proxy from the environment: everything here talks to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .store import DB_FILE

ROOT = Path(__file__).resolve().parent.parent  # where `python -m simulator` is run
HOST = "127.0.0.1"
# The cheapest clip to encode (and prices the tests count on): what `seed` pins by default.
CHEAP_CLIP = {"model": "sora-2", "size": "720x1280", "seconds": "4"}
# Any non-empty bearer key passes a simulator started without --api-key.
ANY_KEY = "sk-simulator"

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ControlError(RuntimeError):
    """A control endpoint answered with an error status."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20) -> None:
    """Return once something listens on 127.0.0.1:`port`; raise if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {HOST}:{port} within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM (a simulator or tracker finishes cleanly), then SIGKILL if it is not gone."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class SimulatorClient:
    """The /_sim control endpoints (and a few reads of /v1) of a simulator at `root`."""

    def __init__(
        self, root: str, api_key: str | None = None, timeout: float = 30, dialect: str = "openai"
    ) -> None:
        self.root = root.rstrip("/")
        self.dialect = dialect
        # What a Provider's base_url is: OpenRouter's API lives under /api/v1.
        self.base_url = f"{self.root}/api/v1" if dialect == "openrouter" else f"{self.root}/v1"
        self.api_key = api_key
        self.timeout = timeout

    def control(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """`method /_sim/<path>` with an optional JSON body; returns the decoded JSON answer."""
        url = f"{self.root}/_sim/{path}"
        request = urllib.request.Request(
            url,
            data=None if payload is None else json.dumps(payload).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with NO_PROXY.open(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ControlError(method, url, exc.code, exc.read().decode(errors="replace")) from None

    def configure(self, **settings: object) -> dict[str, Any]:
        """Patch run-time settings (the option names, with underscores); returns them all."""
        return dict(self.control("POST", "config", settings))

    def config(self) -> dict[str, Any]:
        return dict(self.control("GET", "config"))

    def script_faults(self, fault: str, count: int = 1, **match: str) -> dict[str, Any]:
        """Fault the next `count` requests matching `method` / `path` (a prefix), if given."""
        return dict(self.control("POST", "faults/next", {"fault": fault, "count": count, **match}))

    def pending_faults(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "faults")["pending"])

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def seed(self, count: int = 1, *, varied: bool = False, **pinned: str) -> list[dict[str, Any]]:
        """Completed sample videos: 4 s sora-2 720x1280 clips (the cheapest to encode, and
        prices the tests can count on) unless `varied` lets the simulator pick at random."""
        if not varied:
            pinned = {**CHEAP_CLIP, **pinned}
        return list(self.control("POST", "seed", {"count": count, **pinned})["data"])

    def expire(self, video_id: str) -> dict[str, Any]:
        return dict(self.control("POST", f"videos/{video_id}/expire"))

    def stats(self) -> dict[str, Any]:
        return dict(self.control("GET", "stats"))

    def retrieves(self, video_id: str) -> int:
        """How many times the video has been read (GET /v1/videos/{id})."""
        return int(self.stats()["per_video"].get(video_id, {}).get("retrieve", 0))

    def reset(self) -> None:
        """Forget every video, key, stat and scripted fault (settings stay)."""
        self.control("POST", "reset")

    def content_size(self, video_id: str, variant: str) -> int:
        """The full size of an asset at the provider (a one-byte range request)."""
        query = "index=0" if self.dialect == "openrouter" else f"variant={variant}"
        request = urllib.request.Request(
            f"{self.base_url}/videos/{video_id}/content?{query}",
            headers={"Authorization": f"Bearer {self.api_key or ANY_KEY}", "Range": "bytes=0-0"},
        )
        with NO_PROXY.open(request, timeout=60) as response:
            return int(response.headers["Content-Range"].rsplit("/", 1)[1])


class Simulator(SimulatorClient):
    """A running `python -m simulator` process on 127.0.0.1 and its control endpoints."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        port: int,
        data_dir: Path,
        api_key: str | None = None,
        timeout: float = 30,
        dialect: str = "openai",
    ) -> None:
        super().__init__(f"http://{HOST}:{port}", api_key, timeout, dialect)
        self.proc = proc
        self.port = port
        self.data_dir = data_dir

    def completion_times(self) -> dict[str, float]:
        """Exact terminal times (unix seconds, float) from the simulator's own store.

        The API's completed_at is whole seconds; the store keeps `created + duration` to the
        microsecond, and reading the file sends no request that would count as a poll.
        """
        uri = f"file:{self.data_dir / DB_FILE}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=10) as db:
            rows = db.execute("SELECT id, terminal FROM videos").fetchall()
        return {str(vid): float(terminal) for vid, terminal in rows}

    def stop(self, timeout: float = 10) -> None:
        stop_process(self.proc, timeout)


def start_simulator(
    data_dir: Path,
    *args: str,
    port: int | None = None,
    api_key: str | None = None,
    log: Path | None = None,
    timeout: float = 20,
    control_timeout: float = 30,
    quirks: Sequence[str] = (),
    accent: str | None = None,
    dialect: str = "openai",
) -> Simulator:
    """`python -m simulator` on `port` (default: a free one), once it listens.

    The same data dir and port after a stop is the same provider coming back. `api_key` is
    required on /v1 (and used by `content_size`); `quirks` and `accent` make it answer like a
    gateway (see `simulator.quirks`; reset() comes back to them); `args` are any other options.
    Output goes to `log` (appended) if given, else to this process's stdout and stderr.
    """
    port = port or free_port()
    command = [sys.executable, "-m", "simulator", "--host", HOST, "--port", str(port)]
    command += ["--data-dir", str(data_dir)]
    if api_key is not None:
        command += ["--api-key", api_key]
    if quirks:
        command += ["--quirks", ",".join(quirks)]
    if accent is not None:
        command += ["--accent", accent]
    if dialect != "openai":  # `openrouter`: OpenRouter's video API under /api/v1 instead
        command += ["--dialect", dialect]
    command += args
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if log is None:
        proc = subprocess.Popen(command, cwd=ROOT, env=env)
    else:
        with log.open("ab") as out:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
    try:
        wait_port(port, proc, timeout)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        raise
    return Simulator(proc, port, data_dir, api_key, control_timeout, dialect)
