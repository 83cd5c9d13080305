"""Retries for idempotent calls: urllib3's `Retry` with the official SDK's timing.

GET and DELETE are retried on 408/409/429/5xx and on connection errors and read timeouts, with
exponential backoff or the server's `retry-after-ms`/`Retry-After`. POSTs are never retried
here: the worker re-sends them later with the same Idempotency-Key, so exactly one place
decides when a create is repeated.
"""

from __future__ import annotations

import builtins
import email.utils
import logging
import random
import time
from collections.abc import Mapping
from itertools import takewhile
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit

from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from jobs.provider import deadline as call_deadline
from jobs.provider.fields import as_number

if TYPE_CHECKING:
    from typing import Self

    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

logger = logging.getLogger(__name__)

# The statuses the official SDK retries (409 is its "lock timeout"), for idempotent methods only.
RETRY_STATUSES: Final = frozenset({408, 409, 429, 500, 502, 503, 504})
RETRY_METHODS: Final = frozenset({"GET", "DELETE"})


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` (ms, float) or `Retry-After` (seconds or a date).

    Same precedence as the official SDK. Unparseable or negative values give None.
    """
    millis = as_number(headers.get("retry-after-ms"))
    if millis is not None and millis >= 0:
        return millis / 1000
    header = headers.get("retry-after")
    if not header:
        return None
    seconds = as_number(header)
    if seconds is not None:
        return seconds if seconds >= 0 else None
    date = email.utils.parsedate_tz(header)
    if date is None:
        return None
    return max(0.0, email.utils.mktime_tz(date) - time.time())


class VideosRetry(Retry):
    """urllib3 `Retry` with the SDK's timing, `retry-after-ms`, and a ceiling on waits.

    When the provider asks for a longer wait than `retry_after_cap`, this stops retrying and
    lets the response through, so the client raises `ProviderRateLimited(retry_after=...)`
    and the caller reschedules instead of a worker thread sleeping for minutes.
    """

    def __init__(self, *args: Any, retry_after_cap: float = 20.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_cap = retry_after_cap

    def new(self, **kw: Any) -> Self:
        kw.setdefault("retry_after_cap", self.retry_after_cap)
        return super().new(**kw)

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        # urllib3 reads only integer `Retry-After`; the SDK also honours floats and milliseconds.
        return parse_retry_after(response.headers)

    def get_backoff_time(self) -> float:
        # Never sleep past the call's deadline: the next attempt would fail at once anyway.
        guard = call_deadline.current()
        backoff = self._sdk_backoff_time()
        return min(backoff, max(guard.remaining(), 0.0)) if guard else backoff

    def _sdk_backoff_time(self) -> float:
        # SDK: min(0.5 * 2^n, 8) s times a jitter factor in (0.75, 1], from the first retry on
        # (urllib3's own formula would retry the first time without any pause).
        history = reversed(self.history)
        attempts = len(builtins.list(takewhile(lambda h: h.redirect_location is None, history)))
        if attempts == 0:
            return 0.0
        backoff = min(self.backoff_factor * 2 ** (attempts - 1), self.backoff_max)
        return backoff * random.uniform(0.75, 1.0)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        path = urlsplit(url or "").path
        guard = call_deadline.current()
        if guard is not None and guard.expired:
            # The call's total deadline passed (maybe the watchdog cut this very answer off):
            # no more attempts. The client reports the deadline, not this error.
            raise MaxRetryError(
                cast("ConnectionPool", _pool), url, error or ResponseError("deadline passed")
            ) from error
        if method is not None and not self._is_method_retryable(method):
            # urllib3 would still retry a POST whose connection failed; we never do (see module
            # docstring). MaxRetryError is what requests turns into its usual exceptions.
            raise MaxRetryError(
                cast("ConnectionPool", _pool), url, error or ResponseError("not retried")
            ) from error
        if response is not None:
            wait = self.get_retry_after(response)
            left = guard.remaining() if guard is not None else float("inf")
            if wait is not None and (wait > self.retry_after_cap or wait >= left):
                logger.info(
                    "Not retrying %s %s: HTTP %s asks to wait %.1f s (cap %.1f s, %.1f s left)",
                    method,
                    path,
                    response.status,
                    wait,
                    self.retry_after_cap,
                    left,
                )
                # With raise_on_status=False urllib3 hands this response back to the client.
                raise MaxRetryError(
                    cast("ConnectionPool", _pool), url, ResponseError("Retry-After above cap")
                )
            if str(response.headers.get("x-should-retry", "")).lower() == "false":
                raise MaxRetryError(
                    cast("ConnectionPool", _pool), url, ResponseError("x-should-retry: false")
                )
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        cause = f"HTTP {response.status}" if response is not None else builtins.type(error).__name__
        logger.info(
            "Retrying %s %s after %s (attempt %d, %s retries left)",
            method,
            path,
            cause,
            len(new.history) + 1,
            new.total,
        )
        return new
