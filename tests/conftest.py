"""Shared fixtures: a real simulator process over HTTP, users and clients."""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# The simulator harness, shared with bench/. Tests import these names from here.
from simulator.testing import Simulator, start_simulator
from simulator.testing import free_port as free_port

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.test import Client
    from pytest_django import DjangoDbBlocker, Settings

    from jobs.models import Provider, Video

ROOT = Path(__file__).resolve().parent.parent

# The S3-protocol server (moto's, a subprocess) and its bucket for the storage tests.
pytest_plugins = ["tests.s3"]


def stop_simulator(sim: Simulator) -> None:
    """Stop a simulator from `start_simulator` (SIGTERM, then SIGKILL after 10 s)."""
    sim.stop()


class StandInHandler(BaseHTTPRequestHandler):
    """Base for the tests' stand-in servers (a provider that misbehaves in one exact way)."""

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free 127.0.0.1 port in a thread; yields the base URL, with /v1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


# A webhook delivery as a receiver saw it: path, headers (lower-case names), raw body.
type Delivery = tuple[str, dict[str, str], bytes]


class RecordingHandler(StandInHandler):
    """A webhook receiver that keeps every delivery and answers 204."""

    deliveries: list[Delivery]  # set per server by `webhook_receiver`

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.deliveries.append((self.path, headers, body))
        self.reply(204, "text/plain", b"")


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[Delivery]]]:
    """A stand-in webhook receiver: its origin (no /v1) and the deliveries it got so far."""
    got: list[Delivery] = []
    handler = type("Recording", (RecordingHandler,), {"deliveries": got})
    with serving(handler) as base:
        yield base.removesuffix("/v1"), got


# Everything a test may change, back to what the session started with (speed 40: a 4 s clip
# finishes in ~0.5 s; short hangs so timeout faults stay cheap; 6 fps: encoding the clips was
# half the suite's CPU time at 24 fps, and nothing here needs smooth motion).
SIMULATOR_TEST_DEFAULTS: dict[str, object] = {
    "speed": 40, "expires_after": 3600, "fault_rate": 0, "faults": "all", "retry_after": 1,
    "hang_seconds": 3, "fail_rate": 0, "slow_rate": 0, "slow_factor": 4, "webhook_url": None,
    "webhook_duplicates": False, "webhook_shuffle": False, "webhook_delay": 0, "pad_video_mb": 0,
    "fps": 6, "latency": 0, "duration_jitter": 0,
}  # fmt: skip


@pytest.fixture(scope="session")
def simulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """One simulator for the whole session; fast (speed 40) so a 4 s clip finishes in ~0.5 s."""
    sim = start_simulator(
        tmp_path_factory.mktemp("sim"), "--speed", "40", "--hang-seconds", "3", "--fps", "6"
    )
    yield sim
    stop_simulator(sim)


@pytest.fixture
def simulator(simulator_process: Simulator) -> Iterator[Simulator]:
    """The session simulator, reset to a clean state (no jobs, no faults) for each test."""
    simulator_process.reset()
    simulator_process.configure(**SIMULATOR_TEST_DEFAULTS)
    yield simulator_process
    simulator_process.reset()


@pytest.fixture(scope="session")
def openrouter_simulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A second simulator for the session, speaking OpenRouter's video API under /api/v1."""
    sim = start_simulator(
        tmp_path_factory.mktemp("sim-openrouter"),
        "--speed",
        "40",
        "--hang-seconds",
        "3",
        "--fps",
        "6",
        dialect="openrouter",
    )
    yield sim
    stop_simulator(sim)


@pytest.fixture
def openrouter_simulator(openrouter_simulator_process: Simulator) -> Iterator[Simulator]:
    """The OpenRouter-dialect simulator, reset to a clean state for each test."""
    openrouter_simulator_process.reset()
    openrouter_simulator_process.configure(**SIMULATOR_TEST_DEFAULTS)
    yield openrouter_simulator_process
    openrouter_simulator_process.reset()


# --- Django fixtures -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast_passwords(settings: Settings) -> None:
    """Users are created in most tests; the production hasher's deliberate slowness (PBKDF2,
    about 0.8 s a hash here) was almost half the suite's time and is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def media_root(settings: Settings, tmp_path: Path) -> Path:
    """Every test archives into its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def provider(db: None, simulator: Simulator) -> Provider:
    from jobs.models import Provider
    from jobs.services.demo import seed_catalog

    p = Provider.objects.create(
        name="Sim", base_url=simulator.base_url, api_key_env="SIMULATOR_API_KEY", is_default=True
    )
    seed_catalog(p)
    return p


@pytest.fixture
def openrouter_provider(db: None, openrouter_simulator: Simulator) -> Provider:
    """The OpenRouter-dialect simulator as a provider, as `OPENROUTER_DEMO=1 make run` adds it:
    no list, remix or delete, and its catalog read from its GET /videos/models."""
    from jobs.services.demo import seed_openrouter_demo

    provider, problem = seed_openrouter_demo(base_url=openrouter_simulator.base_url)
    assert not problem, problem
    return provider


@pytest.fixture
def alice(db: None, django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("alice", password="alice-pass-123")


@pytest.fixture
def bob(db: None, django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("bob", password="bob-pass-123")


@pytest.fixture
def staff(db: None, django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user(
        "staff", password="staff-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def alice_client(client: Client, alice: User) -> Client:
    client.force_login(alice)
    return client


@pytest.fixture
def completed(provider: Provider, simulator: Simulator) -> Video:
    """A completed video at the provider, imported locally (as `make run` seeds them)."""
    from tests.helpers import import_by_id

    remote = simulator.seed(1)[0]
    video, _ = import_by_id(provider=provider, video_id=remote["id"])
    return video


def drive(until: Callable[[], bool], timeout: float = 20.0) -> int:
    """Run tracker steps (not the loop) until `until()` holds; returns the number of steps."""
    from tests.helpers import poll_due_videos

    deadline = time.monotonic() + timeout
    steps = 0
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        if poll_due_videos(limit=50) == 0:
            time.sleep(0.05)
        steps += 1
    return steps


@pytest.fixture(scope="session", autouse=True)
def collected_static(django_db_blocker: DjangoDbBlocker) -> None:
    """The production static set-up (manifest + compression) serves the tests too."""
    from django.core.management import call_command

    # Under pytest-xdist every worker runs this: one at a time, as the manifest is one file.
    lock = ROOT / "var" / "collectstatic.lock"
    lock.parent.mkdir(exist_ok=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        call_command("collectstatic", "--noinput", verbosity=0)
