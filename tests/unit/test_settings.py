"""Settings come from the environment, and production refuses unsafe defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def settings_value(expr: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL", "ALLOWED_HOSTS"}
    }
    code = (
        f"import django; django.setup(); from django.conf import settings; print(repr(({expr},)))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**base, "DJANGO_SETTINGS_MODULE": "remixsite.settings", **env},
    )


def test_a_secret_key_is_required_when_debug_is_off() -> None:
    # Set but empty (an unfilled .env line): refused, whether or not the demo's
    # var/secret-key exists (that file only stands in when SECRET_KEY is not set at all).
    r = settings_value("settings.SECRET_KEY", DEBUG="0", SECRET_KEY="")
    assert r.returncode != 0 and "SECRET_KEY is required" in r.stderr


def test_the_secret_key_can_come_from_a_file(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("from-a-file-" + "x" * 50 + "\n")
    r = settings_value("settings.SECRET_KEY", SECRET_KEY_FILE=str(key))
    assert r.stdout.strip() == repr(("from-a-file-" + "x" * 50,))


def test_a_missing_secret_file_fails_loudly(tmp_path: Path) -> None:
    r = settings_value("1", SECRET_KEY_FILE=str(tmp_path / "nope"))
    assert r.returncode != 0 and "cannot be read" in r.stderr


def test_database_url_selects_postgresql() -> None:
    r = settings_value(
        "settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['NAME']",
        SECRET_KEY="k",
        DATABASE_URL="postgres://u@db.example:5432/remix",
    )
    assert "postgresql" in r.stdout and "remix" in r.stdout


def test_defaults_are_sqlite_and_safe() -> None:
    r = settings_value(
        "settings.DATABASES['default']['ENGINE'], settings.DEBUG, "
        "settings.SESSION_COOKIE_SECURE, settings.SECURE_HSTS_SECONDS",
        SECRET_KEY="k",
    )
    assert r.stdout.strip() == "('django.db.backends.sqlite3', False, True, 31536000)"


def test_hosts_and_provider_defaults_come_from_env() -> None:
    r = settings_value(
        "settings.ALLOWED_HOSTS, settings.PROVIDER_DEFAULT_BASE_URL",
        SECRET_KEY="k",
        ALLOWED_HOSTS="a.example,b.example",
        PROVIDER_DEFAULT_BASE_URL="http://gw.local/v1",
    )
    assert r.stdout.strip() == "(['a.example', 'b.example'], 'http://gw.local/v1')"
