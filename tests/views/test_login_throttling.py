"""Log-in throttling (django-axes) through the real log-in forms: ours and the admin's.

After LOGIN_FAILURE_LIMIT failures for one username from one address, or from one address
across usernames (password spraying), log-ins from there are refused with a 429 for
LOGIN_FAILURE_WINDOW_SECONDS after the last counted failure. Time is moved by ageing the
AccessAttempt rows, so no test waits for the clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import F
from django.test import Client
from django.urls import reverse

if TYPE_CHECKING:  # the stubs' name for what the test client returns
    from django.test.client import _MonkeyPatchedWSGIResponse as HttpResponse

ALICE = ("alice", "alice-pass-123")
HOME = "127.0.0.1"  # the test client's REMOTE_ADDR


def log_in(
    client: Client, username: str, password: str, ip: str = HOME, url: str = ""
) -> HttpResponse:
    data = {"username": username, "password": password}
    return client.post(url or reverse("login"), data, REMOTE_ADDR=ip)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def age(seconds: float) -> None:
    """Every recorded failure happened `seconds` earlier than it did."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=seconds))


def fail(client: Client, times: int, username: str = "alice", ip: str = HOME) -> list[int]:
    return [log_in(client, username, "wrong", ip).status_code for _ in range(times)]


def assert_locked_page(response: HttpResponse) -> None:
    assert response.status_code == 429
    text = response.content.decode()
    assert "Log-in locked" in text and "is locked for 15 minutes" in text, text
    assert "Too many failed log-ins" in text  # tests/views/test_deploy.py reads this too


@pytest.mark.parametrize("form", ["login", "admin:login"])
def test_after_the_limit_the_right_password_is_refused_with_a_429_in_words(
    client: Client, staff: Any, form: str
) -> None:
    limit = settings.LOGIN_FAILURE_LIMIT
    url = reverse(form)
    statuses = [log_in(client, "staff", "wrong", url=url).status_code for _ in range(limit - 1)]
    assert statuses == [200] * (limit - 1)  # the form again, with its error
    assert_locked_page(log_in(client, "staff", "wrong", url=url))  # the limit-th failure

    r = log_in(client, "staff", "staff-pass-123", url=url)

    assert_locked_page(r)
    assert "“staff”" in r.content.decode()
    assert not logged_in(client)
    # The other form is locked too: one backend counts both.
    other = reverse("admin:login" if form == "login" else "login")
    assert log_in(client, "staff", "staff-pass-123", url=other).status_code == 429
    assert not logged_in(client)


def test_tries_made_while_locked_out_do_not_extend_the_lock(client: Client, alice: Any) -> None:
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    fail(client, settings.LOGIN_FAILURE_LIMIT)
    age(window - 60)  # one minute of the lock left
    before = list(AccessAttempt.objects.values_list("attempt_time", "failures_since_start"))

    assert log_in(client, "alice", "wrong").status_code == 429
    assert log_in(client, *ALICE).status_code == 429
    assert not logged_in(client)
    # Neither try was counted, so the lock still ends when it was going to.
    assert list(AccessAttempt.objects.values_list("attempt_time", "failures_since_start")) == before

    age(61)
    r = log_in(client, *ALICE)
    assert r.status_code == 302 and logged_in(client)


def test_one_password_sprayed_across_usernames_locks_the_address(
    client: Client, alice: Any
) -> None:
    sprayer = "203.0.113.7"
    limit = settings.LOGIN_FAILURE_LIMIT
    statuses = [
        log_in(client, f"user{i}", "Summer2026!", sprayer).status_code for i in range(limit)
    ]
    assert statuses == [200] * (limit - 1) + [429]  # each username failed only once

    r = log_in(client, *ALICE, ip=sprayer)
    assert r.status_code == 429 and "Too many failed log-ins" in r.content.decode()
    assert not logged_in(client)

    # Another address is not affected.
    assert log_in(client, *ALICE, ip="203.0.113.8").status_code == 302 and logged_in(client)


def test_failures_older_than_the_window_are_pruned_and_do_not_count(
    client: Client, alice: Any
) -> None:
    limit = settings.LOGIN_FAILURE_LIMIT
    fail(client, limit - 1)
    age(settings.LOGIN_FAILURE_WINDOW_SECONDS + 1)

    # The next log-in attempt, anyone's from anywhere, cleans expired rows away.
    assert log_in(client, "someone", "else", ip="198.51.100.1").status_code == 200
    assert not AccessAttempt.objects.filter(username="alice").exists()

    assert fail(client, limit - 1) == [200] * (limit - 1)  # not added to the old ones
    assert log_in(client, *ALICE).status_code == 302 and logged_in(client)


def test_a_successful_log_in_resets_the_failures(client: Client, alice: Any) -> None:
    limit = settings.LOGIN_FAILURE_LIMIT
    fail(client, limit - 1)
    assert log_in(client, *ALICE).status_code == 302
    assert not AccessAttempt.objects.filter(username="alice").exists()
    client.post(reverse("logout"))

    assert fail(client, limit - 1) == [200] * (limit - 1)
    assert log_in(client, *ALICE).status_code == 302 and logged_in(client)


def test_ones_own_log_in_does_not_reset_the_failures_against_another_account(
    client: Client, alice: Any, bob: Any
) -> None:
    """Bob, at the same address, guesses Alice's password between log-ins of his own: his
    success forgives his own failures, never the ones against Alice or the address's count."""
    limit = settings.LOGIN_FAILURE_LIMIT
    fail(client, limit - 1, "alice")
    assert log_in(client, "bob", "bob-pass-123").status_code == 302
    client.post(reverse("logout"))

    assert_locked_page(log_in(client, "alice", "another guess"))
    assert log_in(client, *ALICE).status_code == 429 and not logged_in(client)


# --- behind the reverse proxy -----------------------------------------------------------------

PROXY = "10.0.0.2"  # REMOTE_ADDR of every request that comes through the proxy


def via_proxy(client: Client, username: str, password: str, seen: str, claimed: str = "") -> int:
    """A log-in through nginx's `X-Forwarded-For $proxy_add_x_forwarded_for` (docs/deploy.md):
    whatever the client claimed, then the address the proxy saw."""
    forwarded = f"{claimed}, {seen}" if claimed else seen
    data = {"username": username, "password": password}
    r = client.post(reverse("login"), data, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded)
    return r.status_code


def test_behind_the_proxy_failures_count_against_the_visitor_not_the_proxy(
    client: Client, alice: Any, bob: Any, settings: Any
) -> None:
    settings.BEHIND_PROXY = True
    limit = settings.LOGIN_FAILURE_LIMIT
    # Someone sprays from 198.51.100.9, claiming a new address each time: still one address.
    statuses = [
        via_proxy(client, f"user{i}", "guess", "198.51.100.9", claimed=f"192.0.2.{i}")
        for i in range(limit)
    ]
    assert statuses == [200] * (limit - 1) + [429]
    assert via_proxy(client, "alice", "alice-pass-123", "198.51.100.9", "192.0.2.77") == 429

    # Everyone else, who shares the proxy's REMOTE_ADDR, can still log in.
    assert via_proxy(client, "bob", "bob-pass-123", "203.0.113.50") == 302
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.9"}


def test_without_the_proxy_setting_x_forwarded_for_is_ignored(
    client: Client, alice: Any, settings: Any
) -> None:
    settings.BEHIND_PROXY = False
    limit = settings.LOGIN_FAILURE_LIMIT
    statuses = [
        via_proxy(client, "alice", "guess", f"198.51.100.{i}", claimed=f"192.0.2.{i}")
        for i in range(limit)
    ]
    assert statuses == [200] * (limit - 1) + [429]  # all from REMOTE_ADDR, whatever they claim
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {PROXY}
