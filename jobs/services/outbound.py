"""Sending the queued outbound notifications (jobs.outbound writes them): the worker's side.

Only `manage.py deliver_notifications` calls this, so a slow or hostile receiver holds one of
its threads and nothing else: never the tracker, never a web request. Every send is bounded
(connect and read timeouts, a total deadline on the socket, at most BODY_KEEP bytes of the
answer read), follows no redirect, goes through no proxy, and connects only to the public
addresses it resolved (checked per connection, so a name that later resolves elsewhere is
caught too) unless staff set the target's `allow_private`.

Each delivery keeps its attempt count and the last attempt's status and error (not a log of
every attempt: the log lines of this module have those).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from django.db.models import F
from django.utils import timezone
from standardwebhooks import Webhook
from urllib3.connection import HTTPConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from jobs.models import NotificationTarget, OutboundAttempt, OutboundDelivery
from jobs.provider.deadline import (
    DeadlineExceeded,
    GuardedAdapter,
    _GuardedHTTPConnection,
    _GuardedHTTPSConnection,
)
from jobs.provider.deadline import deadline as deadline_guard
from jobs.provider.media import forbidden_reason, origin, resolve

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0  # seconds
READ_TIMEOUT = 10.0  # per socket read
DEADLINE = 15.0  # the whole send, a trickled answer included
BODY_KEEP = 4096  # bytes of the receiver's answer read (for last_error), never more
MAX_ATTEMPTS = 6  # then FAILED
BACKOFF_BASE = 30.0  # seconds before the 2nd attempt; doubled each time after
BACKOFF_CAP = 3600.0
LEASE = timedelta(seconds=120)  # a claim's hold: well past DEADLINE, so one worker per row
ERROR_CHARS = 500
USER_AGENT = "remix-dashboard-notifications/1"


class TargetRefused(Exception):
    """The target may not be sent to (scheme, or a private address without allow_private).

    Deliberately not an OSError: urllib3 would take it for a network error and retry it.
    """


# --- the wire: connections that connect only to addresses that were checked ---------------


class _PublicOnly(HTTPConnection):
    """Resolves the host itself, refuses if any address is not public, then connects to a
    checked address: what was checked is what is connected to (no second lookup)."""

    def _new_conn(self) -> socket.socket:
        try:
            addresses = resolve(self._dns_host, self.port)
        except (OSError, UnicodeError) as exc:
            raise NewConnectionError(self, f"could not resolve {self.host}: {exc}") from exc
        for address in addresses:
            if reason := forbidden_reason(address):
                raise TargetRefused(f"{self.host} resolves to {reason} ({address})")
        error: Exception | None = None
        for address in addresses:
            try:
                return urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                error = ConnectTimeoutError(self, f"connecting to {self.host} timed out")
                error.__cause__ = exc
            except OSError as exc:
                error = NewConnectionError(self, f"could not connect to {self.host}: {exc}")
        raise error or NewConnectionError(self, f"{self.host} has no address")


class _PublicHTTPConnection(_PublicOnly, _GuardedHTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicOnly, _GuardedHTTPSConnection):
    pass


class PublicOnlyAdapter(GuardedAdapter):
    """GuardedAdapter (the total deadline) whose connections reach public addresses only."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        pools = self.poolmanager.pool_classes_by_scheme
        self.poolmanager.pool_classes_by_scheme = {
            "http": type(
                "PublicHTTPPool", (pools["http"],), {"ConnectionCls": _PublicHTTPConnection}
            ),
            "https": type(
                "PublicHTTPSPool", (pools["https"],), {"ConnectionCls": _PublicHTTPSConnection}
            ),
        }


def session_for(target: NotificationTarget) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the address check must be ours
    adapter = GuardedAdapter() if target.allow_private else PublicOnlyAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def url_refusal(url: str) -> str:
    """Why this URL can never be a target (not http(s), no host), in words; "" if it can."""
    scheme, host, _ = origin(url)
    if scheme not in ("http", "https"):
        return "Only http:// and https:// addresses can receive notifications."
    if not host:
        return "The address has no host name."
    return ""


def private_refusal(url: str) -> str:
    """Why this URL's host is not a public address (resolved now), in words; "" if it is."""
    _, host, port = origin(url)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        return f"The host {host} could not be found."
    for address in addresses:
        if reason := forbidden_reason(address):
            return (
                f"{host} resolves to {reason} ({address}). Only public addresses are allowed "
                "unless “allow private” is ticked."
            )
    return ""


# --- building the request --------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    body: bytes
    headers: dict[str, str]


def build_request(delivery: OutboundDelivery, now: float) -> Request:
    """Slack: {"text": …}. Generic: the payload, signed as Standard Webhooks says."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    target = delivery.target
    if target.kind == NotificationTarget.Kind.SLACK:
        data = delivery.payload.get("data", {})
        video = data.get("video", {})
        link = f"<{video.get('url', '')}|Open video #{video.get('id', '')}>"  # Slack's markup
        text = f"{data.get('text', delivery.event)} {link}"
        return Request(json.dumps({"text": text}).encode(), headers)
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
    stamp = int(now)
    signature = Webhook(target.secret).sign(
        delivery.message_id, datetime.fromtimestamp(stamp, UTC), body
    )
    headers |= {
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
    }
    return Request(body.encode(), headers)


@dataclass(frozen=True)
class Outcome:
    sent: bool
    status: int | None = None
    error: str = ""
    final: bool = False  # no point trying again (refused target)


def send(delivery: OutboundDelivery) -> Outcome:
    """One attempt over the wire; every failure comes back as words, never an exception."""
    target = delivery.target
    if refusal := url_refusal(target.url):
        return Outcome(False, error=refusal, final=True)
    request = build_request(delivery, time.time())
    session = session_for(target)
    try:
        with deadline_guard(DEADLINE) as guard:
            try:
                response = session.post(
                    target.url,
                    data=request.body,
                    headers=request.headers,
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                    allow_redirects=False,
                    stream=True,
                )
                with response:
                    answer = next(response.iter_content(BODY_KEEP), b"")[:BODY_KEEP]
                if guard.fired:  # cut off mid-answer: what was read may look whole, it is not
                    raise DeadlineExceeded
            except TargetRefused as exc:
                return Outcome(False, error=f"Not sent: {exc}.", final=True)
            except (requests.RequestException, DeadlineExceeded, OSError) as exc:
                if guard.expired:
                    return Outcome(False, error=f"No answer within {DEADLINE:.0f} s.")
                return Outcome(False, error=f"Could not reach the target: {_short(exc)}")
    finally:
        session.close()
    if 200 <= response.status_code < 300:
        return Outcome(True, status=response.status_code)
    said = answer.decode("utf-8", "replace").strip()
    kind = " (a redirect; redirects are not followed)" if 300 <= response.status_code < 400 else ""
    error = f"The target answered HTTP {response.status_code}{kind}" + (
        f": {said}" if said else "."
    )
    return Outcome(False, status=response.status_code, error=error)


def _short(exc: Exception) -> str:
    return (str(exc) or exc.__class__.__name__)[:300]


# --- the queue: claim with a lease, record each attempt --------------------------------------


def backoff(attempts: int) -> timedelta:
    """After the n-th failed attempt: BACKOFF_BASE x 2^(n-1), capped."""
    return timedelta(seconds=min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP))


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    lease: datetime  # the worker's own mark: results are written only while it still holds


def claim_due(*, limit: int) -> list[Claim]:
    """Claim up to `limit` due deliveries: each moved forward by LEASE in one conditional
    UPDATE on the value seen, so of two workers reading the same row exactly one wins it."""
    now = timezone.now()
    claims = []
    for pk, due in _due(now, limit):
        lease = now + LEASE
        if OutboundDelivery.objects.filter(
            pk=pk, state=OutboundDelivery.State.PENDING, next_attempt_at=due
        ).update(next_attempt_at=lease):
            claims.append(Claim(pk, lease))
    return claims


def _due(now: datetime, limit: int) -> list[tuple[int, datetime | None]]:
    """(pk, next_attempt_at) of the oldest due deliveries, read without a lock (the outbound_due
    partial index): another worker may read the same rows; the UPDATE decides."""
    return list(
        OutboundDelivery.objects.filter(
            state=OutboundDelivery.State.PENDING, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", "next_attempt_at")[:limit]
    )


def deliver_claimed(claim: Claim) -> str:
    """Send one claimed delivery and record the attempt; returns the state it is left in."""
    delivery = OutboundDelivery.objects.select_related("target").get(pk=claim.delivery_id)
    began = time.monotonic()
    if not delivery.target.enabled:
        outcome = Outcome(
            False, error="The target was turned off before this was sent.", final=True
        )
    else:
        outcome = send(delivery)
    attempts = delivery.attempts + 1
    now = timezone.now()
    OutboundAttempt.objects.create(
        delivery=delivery,
        number=attempts,
        at=now,
        took_ms=int((time.monotonic() - began) * 1000),
        sent=outcome.sent,
        status=outcome.status,
        error=outcome.error[:ERROR_CHARS],
    )
    fields: dict[str, Any] = {
        "attempts": F("attempts") + 1,
        "last_status": outcome.status,
        "last_error": outcome.error[:ERROR_CHARS],
    }
    if outcome.sent:
        fields |= {"state": OutboundDelivery.State.SENT, "sent_at": now, "next_attempt_at": None}
    elif outcome.final or attempts >= MAX_ATTEMPTS:
        fields |= {"state": OutboundDelivery.State.FAILED, "next_attempt_at": None}
        if not outcome.final:
            fields["last_error"] = f"Gave up after {attempts} attempts. {outcome.error}"[
                :ERROR_CHARS
            ]
    else:
        fields["next_attempt_at"] = now + backoff(attempts)
    # Only while our lease holds: a worker that outlived it must not overwrite a newer try.
    OutboundDelivery.objects.filter(
        pk=delivery.pk, state=OutboundDelivery.State.PENDING, next_attempt_at=claim.lease
    ).update(**fields)
    state = fields.get("state", OutboundDelivery.State.PENDING)
    log.info(
        "outbound %s (%s) attempt %d: %s",
        delivery.message_id,
        delivery.event,
        attempts,
        "sent" if outcome.sent else outcome.error or outcome.status,
    )
    return str(state)


def deliver_due(*, limit: int = 20) -> int:
    """One step in this thread (tests, --once): claim what is due and send it."""
    claims = claim_due(limit=limit)
    for claim in claims:
        deliver_claimed(claim)
    return len(claims)


def try_again(*, ids: list[int]) -> int:
    """Staff's "try again now" (admin): given-up or waiting deliveries, from the first attempt."""
    return (
        OutboundDelivery.objects.filter(pk__in=ids)
        .exclude(state=OutboundDelivery.State.SENT)
        .update(
            state=OutboundDelivery.State.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
        )
    )
