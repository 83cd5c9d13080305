"""Production hardening: `check --deploy` is clean, CSP is strict, log-ins are throttled, and
the provider's API key never leaks into a page or a log line. See docs/deploy.md."""

from __future__ import annotations

import logging
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.models import Provider, Video
from jobs.services.manage import check_provider
from jobs.urls import urlpatterns as job_urls
from tests.conftest import StandInHandler, serving
from tests.helpers import poll_due_videos

ROOT = Path(__file__).resolve().parents[2]

# What docs/deploy.md tells an operator to set. Every security-relevant variable is given, so
# a developer's .env (read at start-up, but beaten by real variables) cannot change the verdict.
PRODUCTION_ENV = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "example.com",
    "CSRF_TRUSTED_ORIGINS": "https://example.com",
    "SITE_URL": "https://example.com",
    "SECURE_COOKIES": "1",
    "SECURE_SSL_REDIRECT": "1",
    "BEHIND_PROXY": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Not the test run's own switches: DJANGO_ALLOW_ASYNC_UNSAFE (set for Playwright by the
    # e2e conftest) is exactly what check --deploy must complain about in production.
    dropped = {*PRODUCTION_ENV, "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, "DJANGO_SETTINGS_MODULE": "remixsite.settings", **env},
    )


# --- check --deploy and settings -------------------------------------------------------------


def test_check_deploy_is_clean_with_the_documented_production_env() -> None:
    r = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(64),
        **PRODUCTION_ENV,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no issues" in r.stdout


def test_check_deploy_flags_a_weak_secret_key() -> None:
    r = manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY="short", **PRODUCTION_ENV)
    assert r.returncode != 0 and "security.W009" in r.stderr


def test_production_refuses_to_start_without_a_secret_key() -> None:
    # Set but empty, as an unfilled line in a .env or a systemd EnvironmentFile would be.
    r = manage("check", "--deploy", SECRET_KEY="", **PRODUCTION_ENV)
    assert r.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in r.stderr


# --- Content Security Policy -----------------------------------------------------------------


def csp(response: Any) -> str:
    return str(response.headers.get("Content-Security-Policy", ""))


def test_every_page_carries_a_strict_csp(client: Client, staff: Any, completed: Video) -> None:
    pages = [reverse("login")]
    anonymous = [client.get(url) for url in pages]
    client.force_login(staff)
    urls = ["/", completed.get_absolute_url(), reverse("jobs:remix", args=[completed.pk])]
    urls += [reverse("admin:index"), reverse("admin:jobs_video_changelist")]
    for response in [*anonymous, *(client.get(url) for url in urls)]:
        policy = csp(response)
        assert response.status_code == 200
        assert "script-src 'self'" in policy and "object-src 'none'" in policy, policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy


TEMPLATE_DIRS = [ROOT / "templates", *ROOT.glob("jobs/templates")]
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.IGNORECASE | re.DOTALL)
INLINE_HANDLER = re.compile(r"""\son[a-z]+\s*=|\bhx-on\b|javascript:""", re.IGNORECASE)


def templates() -> list[Path]:
    return sorted(p for d in TEMPLATE_DIRS for p in d.rglob("*.html"))


def test_templates_have_no_inline_scripts_handlers_or_styles() -> None:
    # The CSP would block these in the browser, silently: catch them here instead.
    assert templates()
    for path in templates():
        text = path.read_text()
        for attrs, body in SCRIPT.findall(text):
            assert "src=" in attrs and not body.strip(), f"inline <script> in {path}"
            assert "json" not in attrs.lower() or not body.strip()
        assert not INLINE_HANDLER.search(text), f"inline event handler in {path}"
        assert not re.search(r"""\sstyle\s*=""", text), f"inline style attribute in {path}"
        assert "|safe" not in text and "autoescape off" not in text, f"unescaped output in {path}"


# --- log-in throttling -----------------------------------------------------------------------


def test_six_wrong_passwords_lock_the_account_even_for_the_right_one(
    client: Client, alice: Any, settings: Any
) -> None:
    assert settings.LOGIN_FAILURE_LIMIT == 5
    for _ in range(6):
        r = client.post(reverse("login"), {"username": "alice", "password": "wrong"}, follow=True)
    assert "Too many failed log-ins" in r.content.decode()

    r = client.post(
        reverse("login"), {"username": "alice", "password": "alice-pass-123"}, follow=True
    )
    assert "Too many failed log-ins" in r.content.decode()
    assert not r.context["user"].is_authenticated
    assert "_auth_user_id" not in client.session

    # The admin's log-in form goes through the same backend.
    r = client.post(
        reverse("admin:login"), {"username": "alice", "password": "alice-pass-123"}, follow=True
    )
    assert "_auth_user_id" not in client.session


# --- the API key -----------------------------------------------------------------------------

KEY = "sk-DISTINCTIVE-" + secrets.token_hex(12)


class EchoingHandler(StandInHandler):
    """A provider that quotes the Authorization header back in every error (some gateways do)."""

    def _answer(self) -> None:
        auth = self.headers.get("Authorization", "")
        if self.path.endswith("/remix") or "html" in self.path:
            body = f"<html><body>502 upstream refused {auth}</body></html>"
            self.reply(502, "text/html", body.encode())
        else:
            body = (
                '{"error": {"message": "Incorrect API key provided: '
                + auth
                + '", "type": "invalid_request_error", "code": "invalid_api_key"}}'
            )
            self.reply(401, "application/json", body.encode())

    do_GET = do_POST = _answer  # noqa: N815 (stdlib names)


@pytest.fixture
def echoing(db: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Provider]:
    monkeypatch.setenv("PROVIDER_KEY_ECHO", KEY)
    monkeypatch.setenv("SIMULATOR_API_KEY", KEY)
    with serving(EchoingHandler) as base_url:
        yield Provider.objects.create(
            name="Echoing gateway", base_url=base_url, api_key_env="PROVIDER_KEY_ECHO"
        )


def test_the_api_key_never_reaches_a_log_line_or_a_row(
    echoing: Provider, alice: Any, completed: Video, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 and requests included
    running = Video.objects.create(
        provider=echoing,
        owner=alice,
        video_id="video_echo",
        status=Video.Status.IN_PROGRESS,
        submission=Video.Submission.SUBMITTED,
        prompt="p",
        next_poll_at=timezone.now(),
    )
    unsent = Video.objects.create(
        provider=echoing,
        owner=alice,
        remixed_from_video_id="video_source",
        prompt="q",
        next_poll_at=timezone.now(),
    )
    poll_due_videos()  # a 401 on refresh, a 502 HTML page on submit
    level, message = check_provider(provider=echoing)

    assert "refused" in message  # the call really failed, and said so
    texts = [caplog.text, message]
    for video in (running, unsent):
        video.refresh_from_db()
        texts += [video.last_error, video.error_message, video.error_code]
    assert any("API key" in t or "502" in t for t in texts[2:]), texts
    for text in texts:
        assert KEY not in text and KEY[3:] not in text


def test_the_api_key_never_appears_on_a_page(
    client: Client, staff: Any, completed: Video, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMULATOR_API_KEY", KEY)
    provider = completed.provider
    client.force_login(staff)
    urls = [
        reverse("admin:jobs_provider_changelist"),
        reverse("admin:jobs_provider_change", args=[provider.pk]),
        reverse("admin:jobs_video_change", args=[completed.pk]),
    ]
    for pattern in job_urls:
        route = str(pattern.pattern)
        if pattern.name in ("media", "webhook") or "<" in route and "<int:pk>" not in route:
            continue
        urls.append("/" + route.replace("<int:pk>", str(completed.pk)))
    rendered = 0
    for url in urls:
        r = client.get(url)
        if r.status_code == 200:
            rendered += 1
            body = r.getvalue()  # read to the end, streamed (CSV exports) or not
            assert KEY.encode() not in body, url
    assert rendered >= 6
    # The admin's connection check talks to the provider with the key, and reports in words.
    r = client.post(
        reverse("admin:jobs_provider_changelist"),
        {"action": "check_connection", "_selected_action": [provider.pk]},
        follow=True,
    )
    assert b"Videos API answers" in r.content and KEY.encode() not in r.content
