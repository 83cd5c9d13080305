"""`make run`'s launcher: simulator + web + task worker + tracker, a login, seeded samples,
and Ctrl-C stopping all of them."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

import pytest
import requests

from remixsite.keyfile import ensure_secret_key
from tests.conftest import ROOT, free_port

PASSWORD = "demo-pass-4321"


@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the demo always runs on its own SQLite file: the SQLite pass covers it",
)
def test_the_demo_serves_a_login_then_the_seeded_videos_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    port, sim_port = free_port(), free_port()
    ensure_secret_key()  # what `make run` does first: var/secret-key, once
    # As `make run` runs it: no DEBUG and no SECRET_KEY anywhere, only var/secret-key.
    hidden = ("PYTEST", "DEBUG", "SECRET_KEY")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(hidden)},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "SIM_DATA_DIR": str(tmp_path / "sim"),
        "SIM_SPEED": "40",
        "DEMO_PASSWORD": PASSWORD,
        "TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    log = (tmp_path / "demo.log").open("w+")
    demo = subprocess.Popen(
        [*manage, "rundemo", "--port", str(port), "--sim-port", str(sim_port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and f"Remix dashboard: {url}" not in read(log):
            assert demo.poll() is None, read(log)
            time.sleep(0.2)
        assert f"login: admin / {PASSWORD}" in read(log)

        web = requests.Session()
        login = web.get(url, timeout=10)
        assert login.url.startswith(f"{url}login/") and 'name="password"' in login.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert token is not None
        page = web.post(
            login.url,
            data={"username": "admin", "password": PASSWORD, "csrfmiddlewaretoken": token[1]},
            headers={"Referer": login.url},
            timeout=10,
        )
        assert page.url == url and page.status_code == 200
        assert page.text.count('class="badge completed"') >= 3, "the seeded samples are listed"
        # DEBUG is off: the site's own 404 page, and static files from WhiteNoise's manifest.
        missing = web.get(f"{url}videos/999999/", timeout=10)
        assert missing.status_code == 404 and "There is no video #999999" in missing.text
        assert "Remix dashboard" in missing.text and "technical_404" not in missing.text
        css = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page.text)
        assert css is not None, "hashed (collected) static names"
        assert web.get(f"http://127.0.0.1:{port}{css[1]}", timeout=10).status_code == 200
        # A manage.py command beside the demo works as it is: no DEBUG=1 to guess.
        beside = subprocess.run(
            [
                *manage,
                "shell",
                "-v",
                "0",
                "-c",
                "from jobs.models import Video; print(Video.objects.count())",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert beside.returncode == 0, beside.stderr
        assert beside.stdout.strip() == "3"
        listed = requests.get(
            f"http://127.0.0.1:{sim_port}/v1/videos",
            headers={"Authorization": "Bearer sk-local-simulator"},
            timeout=10,
        ).json()
        assert len(listed["data"]) == 3  # the simulator answers on its port

        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert demo.wait(timeout=30) == 0, read(log)
    finally:
        if demo.poll() is None:
            demo.kill()
    for p in (port, sim_port):  # all four processes are gone: nothing listens any more
        try:
            requests.get(f"http://127.0.0.1:{p}/", timeout=2)
        except requests.ConnectionError:
            continue
        raise AssertionError(f"something still answers on port {p}")


def read(log: TextIO) -> str:
    log.flush()
    log.seek(0)
    return log.read()


def test_the_demo_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    key = tmp_path / "var" / "secret-key"
    assert ensure_secret_key(key) is True
    first = key.read_text()
    assert len(first.strip()) >= 50 and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert ensure_secret_key(key) is False  # never replaced: sessions survive a restart
    assert key.read_text() == first


def test_settings_read_the_demo_key_when_no_secret_key_is_given() -> None:
    """`manage.py <anything>` beside the demo: no SECRET_KEY, no DEBUG, var/secret-key there."""
    ensure_secret_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "SECRET_KEY"))}
    probe = "from django.conf import settings; print(settings.SECRET_KEY, settings.DEBUG)"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [(ROOT / "var" / "secret-key").read_text().strip(), "False"]
