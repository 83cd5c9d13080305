"""Content downloads: redirects followed by hand (SSRF-safe), media type and size checked.

A provider may send the bytes from elsewhere (a CDN) with a redirect. Each hop is checked
before it is requested: http(s) only, at most `max_redirects`, and never to a loopback,
private, link-local, multicast, reserved or unspecified address unless `allow_private` (the
local simulator is on 127.0.0.1). The API key goes only to the provider's own origin.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import IO, Final
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

from jobs.provider.deadline import Deadline, DeadlineExceeded
from jobs.provider.deadline import deadline as deadline_guard
from jobs.provider.errors import (
    ROUTE_CONTENT,
    AssetsExpired,
    InvalidAnswer,
    NotReady,
    ProviderError,
    ProviderUnavailable,
    VariantUnsupported,
    request_id,
    status_error,
)
from jobs.provider.fields import as_number
from jobs.provider.schema import DownloadResult
from jobs.provider.transport import Transport, human_size

# 301/302/303 turn into a GET in browsers; ours already is one, so all five mean "fetch there".
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})

# A variant answered with one of these is one the provider does not serve (not a failure).
UNSUPPORTED_VARIANT_STATUSES: Final = frozenset({400, 404, 415})

# Variant -> (the media type prefix it must come as, that kind in words).
VARIANT_MEDIA: Final = {
    "video": ("video/", "a video"),
    "thumbnail": ("image/", "an image"),
    "spritesheet": ("image/", "an image"),
}

_CONTENT_RANGE_RE: Final = re.compile(r"^\s*bytes\s+(?:\d+-\d+|\*)/(\d+)\s*$", re.IGNORECASE)

Origin = tuple[str, str, int]


def origin(url: str) -> Origin:
    """(scheme, host, port): where the Authorization header may go."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


def forbidden_reason(address: str) -> str | None:
    """Why this IP address is not a public one ("a link-local address"), or None if it is."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])  # without an IPv6 zone id
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    checks = [
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a private (loopback) address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "a non-public address"),  # e.g. 100.64.0.0/10, shared (CGNAT) space
    ]
    return next((reason for matched, reason in checks if matched), None)


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (a literal IP is its own answer)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def host_is_private(url: str) -> bool:
    """Does this URL's host resolve to a non-public address (the simulator on 127.0.0.1)?"""
    _, host, port = origin(url)
    if not host:
        return False
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        return False  # unresolvable now: treat as public, so redirects stay checked
    return any(forbidden_reason(address) for address in addresses)


def check_redirect(
    response: requests.Response | None,
    target: str,
    *,
    variant: str,
    allow_private: bool,
    how: str = "redirected the {} download to",
) -> None:
    """Refuse a redirect (or a URL named in an answer: `response` None) to anything but a
    public http(s) address (unless allowed)."""
    said = "The provider " + how.format(variant)
    scheme, host, port = origin(target)
    if scheme not in ("http", "https"):
        raise _refused(response, f"{said} a {scheme or 'schemeless'} URL, not http(s); refused")
    if not host:
        raise _refused(response, f"{said} a URL without a host; refused")
    if allow_private:
        return
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise _unavailable(response, f"{said} {host}, which could not be resolved") from exc
    for address in addresses:
        reason = forbidden_reason(address)
        if reason:
            shown = host if host == address else f"{host} ({address})"
            raise _refused(response, f"{said} {shown}, {reason}; refused")


def download(
    http: Transport,
    url: str,
    variant: str,
    dest: IO[bytes],
    *,
    max_bytes: int,
    deadline: float | None,
    min_rate: float,
    max_redirects: int,
    allow_private: bool,
    chunk_size: int,
    named: bool = False,
) -> DownloadResult:
    """See `ProviderClient.download`. `named`: `url` came from the provider's answer (a
    `content_url`), so it is checked like a redirect before it is requested."""
    if variant not in VARIANT_MEDIA:
        raise ValueError(f"Unknown variant {variant!r}; expected one of {sorted(VARIANT_MEDIA)}")
    if named:
        check_redirect(
            None, url, variant=variant, allow_private=allow_private, how="named for the {} file"
        )
    with deadline_guard(deadline if deadline is not None else http.deadline) as guard:
        response = _follow(http, url, variant, guard, max_redirects, allow_private)
        with response:
            content_type, expected = _check_media(response, variant, max_bytes)
            if deadline is None and expected:
                # A large file may take longer, but only at `min_rate` or better.
                guard.extend(http.deadline + expected / min_rate)
            written = _stream(response, variant, dest, chunk_size, max_bytes, guard)
    return DownloadResult(bytes_written=written, content_type=content_type, expected=expected)


def _follow(
    http: Transport,
    url: str,
    variant: str,
    guard: Deadline,
    max_redirects: int,
    allow_private: bool,
) -> requests.Response:
    """GET `url`, following up to `max_redirects` checked redirects; the final 2xx answer."""
    home = origin(http.base_url)
    for hop in range(max_redirects + 1):
        # The SDK's Accept; identity so Content-Length counts the bytes we write.
        headers: dict[str, str | None] = {
            "Accept": "application/binary",
            "Accept-Encoding": "identity",
        }
        if origin(url) != home:
            headers["Authorization"] = None  # None removes the session's header
        response = http.send("GET", ROUTE_CONTENT, url, guard, headers=headers)
        location = response.headers.get("Location")
        if 200 <= response.status_code < 300:
            return response
        with response:
            if response.status_code not in REDIRECT_STATUSES or not location:
                raise _status_error(http, response, variant)
            if hop == max_redirects:
                raise _refused(
                    response,
                    f"The provider redirected the {variant} download more than "
                    f"{max_redirects} times; refused",
                )
            target = urljoin(url, location.strip())
            check_redirect(response, target, variant=variant, allow_private=allow_private)
        url = target
    raise AssertionError("unreachable: the last hop returns or raises")


def _status_error(http: Transport, response: requests.Response, variant: str) -> ProviderError:
    """A refused download; a thumbnail or spritesheet refused is one the provider lacks."""
    error = status_error("GET", ROUTE_CONTENT, response, redact=http.redact)
    if (
        variant != "video"
        and response.status_code in UNSUPPORTED_VARIANT_STATUSES
        and not isinstance(error, AssetsExpired | NotReady)
    ):
        return VariantUnsupported(
            f"The provider does not serve the {variant} (HTTP {response.status_code}: "
            f"{error.message})",
            status=response.status_code,
            code=error.code,
            request_id=error.request_id,
        )
    return error


def _check_media(
    response: requests.Response, variant: str, max_bytes: int
) -> tuple[str | None, int | None]:
    """The answer's content type and announced size, if both are acceptable."""
    content_type = response.headers.get("Content-Type")
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in ("application/json", "text/html"):
        # An error page or a JSON error sent with a 2xx: transient, as the old client had it.
        raise _unavailable(
            response, f"The provider answered GET {ROUTE_CONTENT} with {mime} instead of media"
        )
    prefix, kind = VARIANT_MEDIA[variant]
    if not mime.startswith(prefix) and variant != "video":
        # LiteLLM drops `variant` and answers the MP4 as video/mp4: never download it again.
        raise VariantUnsupported(
            f"The provider answered the {variant} download with {mime or 'no content type'}, "
            f"not {kind}",
            status=response.status_code,
            request_id=request_id(response),
        )
    if not mime.startswith(prefix):
        raise _refused(
            response,
            f"The provider answered the {variant} download with {mime or 'no content type'}, "
            f"not {kind}",
        )
    expected = _announced(response)
    if expected is not None and expected > max_bytes:
        raise _refused(
            response,
            f"The provider's {variant} download is {human_size(expected)}, more than the "
            f"{human_size(max_bytes)} allowed; refused",
        )
    return content_type, expected


def _announced(response: requests.Response) -> int | None:
    """A Content-Range's total (a 206 answer), else Content-Length, else None."""
    match = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
    if match:
        return int(match.group(1))
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None  # the length of the encoded bytes, not of what we write
    length = as_number(response.headers.get("Content-Length"))
    return int(length) if length is not None and length >= 0 else None


def _stream(
    response: requests.Response,
    variant: str,
    dest: IO[bytes],
    chunk_size: int,
    max_bytes: int,
    guard: Deadline,
) -> int:
    """Copy the body into `dest`; the number of bytes written."""
    expected = _announced(response)
    of = f" of {expected}" if expected is not None else ""
    written = 0
    chunks = response.iter_content(chunk_size)
    while True:
        # Only network errors become ProviderUnavailable; a failing `dest.write` (disk full)
        # is the caller's problem and propagates as it is.
        try:
            chunk = next(chunks)
        except StopIteration:
            break
        except (requests.RequestException, Urllib3Error, DeadlineExceeded) as exc:
            if guard.expired:
                raise _too_slow(response, variant, guard, written) from exc
            raise _unavailable(
                response, f"The {variant} download broke off after {written} bytes{of}"
            ) from exc
        if written + len(chunk) > max_bytes:
            raise _refused(
                response,
                f"The provider's {variant} download is larger than {human_size(max_bytes)}; "
                "refused",
            )
        if chunk:
            dest.write(chunk)
            written += len(chunk)
    if guard.fired:  # a body without a length, cut off by the deadline, looks complete
        raise _too_slow(response, variant, guard, written)
    if expected is not None and written < expected:
        raise _unavailable(response, f"The {variant} download ended after {written}{of} bytes")
    return written


def _too_slow(
    response: requests.Response, variant: str, guard: Deadline, written: int
) -> ProviderUnavailable:
    return _unavailable(
        response,
        f"The {variant} download did not finish within {guard.seconds:g} s "
        f"({written} bytes written)",
    )


def _refused(response: requests.Response | None, message: str) -> InvalidAnswer:
    if response is None:
        return InvalidAnswer(message)
    return InvalidAnswer(message, status=response.status_code, request_id=request_id(response))


def _unavailable(response: requests.Response | None, message: str) -> ProviderUnavailable:
    if response is None:
        return ProviderUnavailable(message)
    return ProviderUnavailable(
        message, status=response.status_code, request_id=request_id(response)
    )
