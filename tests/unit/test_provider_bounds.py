"""A provider is untrusted input: what jobs.provider refuses, cuts off or stops following.

Every test runs the real client against a stand-in HTTP server on 127.0.0.1 that misbehaves
in one exact way (an endless body, a trickle, a redirect into the local network, ...).
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jobs.provider.client import ProviderClient, shared_client
from jobs.provider.errors import (
    InvalidAnswer,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    VariantUnsupported,
)
from jobs.provider.fields import PROMPT_MAX_LENGTH
from jobs.provider.media import forbidden_reason
from jobs.provider.schema import RemoteVideo, parse_page

KEY = "sk-test-0123456789abcdef-never-shown"
MIB = 1024 * 1024


# --- a stand-in provider ------------------------------------------------------------------


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class StandIn:
    root: str  # http://127.0.0.1:port
    hits: list[Hit] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return self.root + "/v1"


Respond = Callable[["Handler", StandIn], None]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    respond: Respond
    state: StandIn

    def handle_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.state.hits.append(Hit(self.command, self.path, dict(self.headers)))
        try:
            type(self).respond(self, self.state)
        except OSError:
            self.close_connection = True  # the client hung up on us: that is the point

    do_GET = do_POST = do_DELETE = handle_any

    def head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def send(
        self, status: int, body: bytes, content_type: str = "application/json", **headers: str
    ) -> None:
        self.head(
            status,
            {
                "Content-Type": content_type,
                "Content-Length": str(len(body)),
                **{k.replace("_", "-"): v for k, v in headers.items()},
            },
        )
        self.wfile.write(body)

    def endless(self, status: int, content_type: str, chunk: bytes = b" " * 65536) -> None:
        """A body without a length that never ends (until the client hangs up)."""
        self.close_connection = True
        self.head(status, {"Content-Type": content_type, "Connection": "close"})
        while not self.state.stop.is_set():
            self.wfile.write(chunk)

    def trickle(self, data: bytes, every: float) -> None:
        for byte in data:
            if self.state.stop.wait(every):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def stand_in(respond: Respond) -> Iterator[StandIn]:
    state = StandIn(root="")
    handler = type("H", (Handler,), {"respond": respond, "state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.block_on_close = False  # a trickling handler must not hold up the test
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    state.root = f"http://127.0.0.1:{server.server_port}"
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()


def video(video_id: str = "video_1", **extra: object) -> dict[str, object]:
    return {
        "id": video_id,
        "object": "video",
        "model": "sora-2",
        "status": "queued",
        "progress": 0,
        "created_at": 1759938772,
        "seconds": "4",
        "size": "720x1280",
        **extra,
    }


def body(data: object) -> bytes:
    return json.dumps(data).encode()


# --- 1. bounded JSON answers ----------------------------------------------------------------


def test_an_endless_video_answer_is_refused_at_its_cap_in_words() -> None:
    with stand_in(lambda h, s: h.endless(200, "application/json")) as fake:
        with ProviderClient(fake.base_url, KEY) as api:
            started = time.monotonic()
            with pytest.raises(InvalidAnswer) as info:
                api.retrieve("video_1")
    assert time.monotonic() - started < 5
    assert info.value.message == (
        "The provider's answer to GET /videos/{id} is larger than 1 MiB; refused"
    )
    assert info.value.status == 200
    assert not isinstance(info.value, ProviderUnavailable)  # not transient: never retried
    assert len(fake.hits) == 1


def test_a_content_length_over_the_cap_is_refused_before_reading() -> None:
    def announce(h: Handler, s: StandIn) -> None:
        h.head(200, {"Content-Type": "application/json", "Content-Length": str(50 * MIB)})
        h.wfile.write(b"{")  # and then nothing: the client must not wait for the rest

    with stand_in(announce) as fake, ProviderClient(fake.base_url, KEY, deadline=10) as api:
        started = time.monotonic()
        with pytest.raises(InvalidAnswer, match="larger than 1 MiB"):
            api.retrieve("video_1")
    assert time.monotonic() - started < 2


def test_a_list_page_may_be_larger_than_one_video_but_not_endless() -> None:
    page = body(
        {
            "object": "list",
            "data": [video(f"v{i}", prompt="p" * 400) for i in range(8)],
            "has_more": False,
        }
    )
    assert 2048 < len(page) < 16384

    def answer(h: Handler, s: StandIn) -> None:
        if h.path.startswith("/v1/videos?"):
            h.send(200, page)
        else:
            h.send(200, body(video(prompt="p" * 4000)))

    def client(base_url: str) -> ProviderClient:
        return ProviderClient(base_url, KEY, json_max_bytes=2048, list_max_bytes=16384)

    with stand_in(answer) as fake, client(fake.base_url) as api:
        assert len(api.list().data) == 8
        with pytest.raises(InvalidAnswer, match=r"GET /videos/\{id\} is larger than 2 KiB"):
            api.retrieve("video_1")
    with stand_in(lambda h, s: h.endless(200, "application/json")) as fake:
        with client(fake.base_url) as api:
            with pytest.raises(InvalidAnswer, match=r"GET /videos is larger than 16 KiB"):
                api.list()


def test_an_endless_error_page_is_read_only_to_its_limit() -> None:
    with stand_in(lambda h, s: h.endless(500, "text/html")) as fake:
        with ProviderClient(fake.base_url, KEY, max_retries=0) as api:
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable) as info:
                api.retrieve("video_1")
    assert time.monotonic() - started < 5
    assert "HTTP 500" in info.value.message


def test_an_oversized_create_answer_is_refused_not_resent() -> None:
    with stand_in(lambda h, s: h.endless(200, "application/json")) as fake:
        with ProviderClient(fake.base_url, KEY, json_max_bytes=4096) as api:
            with pytest.raises(InvalidAnswer, match=r"POST /videos is larger than 4 KiB"):
                api.create("a cat")


# --- 2. a total deadline --------------------------------------------------------------------


def trickling_body(h: Handler, s: StandIn) -> None:
    h.head(200, {"Content-Type": "application/json", "Content-Length": "100"})
    h.trickle(b" " * 100, every=1.0)  # each byte well within the 5 s read timeout


def test_a_trickling_answer_fails_at_the_deadline() -> None:
    with stand_in(trickling_body) as fake:
        with ProviderClient(fake.base_url, KEY, timeout=(2, 5), deadline=2) as api:
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable) as info:
                api.retrieve("video_1")
            elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 3.0
    assert info.value.message == (
        "The provider did not finish answering GET /videos/{id} within 2 s"
    )
    assert not info.value.outcome_unknown


def test_a_trickling_post_fails_at_the_deadline_with_an_unknown_outcome() -> None:
    with stand_in(trickling_body) as fake:
        with ProviderClient(fake.base_url, KEY, timeout=(2, 5), deadline=2) as api:
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable) as info:
                api.create("a cat")
    assert time.monotonic() - started < 3.0
    assert info.value.outcome_unknown and "within 2 s" in info.value.message


def test_trickling_headers_fail_at_the_deadline() -> None:
    def slow_headers(h: Handler, s: StandIn) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        h.trickle(b"X-Slow: " + b"a" * 100 + b"\r\n", every=1.0)

    with stand_in(slow_headers) as fake:
        with ProviderClient(fake.base_url, KEY, timeout=(2, 5), deadline=2) as api:
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable, match="within 2 s"):
                api.list()
    assert time.monotonic() - started < 3.0


def test_a_body_without_a_length_cut_off_by_the_deadline_is_not_complete() -> None:
    def close_delimited(h: Handler, s: StandIn) -> None:
        h.close_connection = True
        h.head(200, {"Content-Type": "application/json", "Connection": "close"})
        h.trickle(b'{"id": "video_1"' + b" " * 100 + b"}", every=0.5)

    with stand_in(close_delimited) as fake:
        with ProviderClient(fake.base_url, KEY, timeout=(2, 5), deadline=1.5) as api:
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable, match="within 1.5 s"):
                api.retrieve("video_1")
    assert time.monotonic() - started < 2.5  # cut off, not read to its end (about 60 s)


def test_a_retry_after_beyond_the_deadline_is_raised_at_once() -> None:
    def limited(h: Handler, s: StandIn) -> None:
        h.send(429, body({"error": {"message": "slow down"}}), Retry_After="5")

    with stand_in(limited) as fake:
        with ProviderClient(fake.base_url, KEY, deadline=2, retry_after_cap=20) as api:
            started = time.monotonic()
            with pytest.raises(ProviderRateLimited) as info:
                api.list()
    assert time.monotonic() - started < 1
    assert info.value.retry_after == 5 and len(fake.hits) == 1


def test_the_deadline_does_not_break_the_next_call_on_the_same_pool() -> None:
    with stand_in(lambda h, s: h.send(200, body(video()))) as fake:
        with ProviderClient(fake.base_url, KEY, deadline=0.5) as api:
            for _ in range(3):
                assert api.retrieve("video_1").id == "video_1"
                time.sleep(0.6)  # let each call's deadline pass while its connection idles
            assert api.retrieve("video_1").id == "video_1"


# --- 3. downloads ---------------------------------------------------------------------------


def media(
    content_type: str, data: bytes = b"\0\0\0\x18ftypmp42" + b"x" * 1000, **headers: str
) -> Respond:
    return lambda h, s: h.send(200, data, content_type, **headers)


def test_a_download_reports_the_size_the_provider_announced() -> None:
    with stand_in(media("video/mp4")) as fake, ProviderClient(fake.base_url, KEY) as api:
        dest = io.BytesIO()
        result = api.download("video_1", "video", dest, max_bytes=MIB)
    assert result.bytes_written == result.expected == len(dest.getvalue()) == 1012
    assert result.content_type == "video/mp4"


def test_a_download_over_max_bytes_is_refused_and_reading_stops() -> None:
    with stand_in(lambda h, s: h.endless(200, "video/mp4")) as fake:
        with ProviderClient(fake.base_url, KEY) as api:
            dest = io.BytesIO()
            with pytest.raises(InvalidAnswer) as info:
                api.download("video_1", "video", dest, max_bytes=MIB)
    assert info.value.message == "The provider's video download is larger than 1 MiB; refused"
    assert len(dest.getvalue()) <= MIB


def test_a_download_announcing_more_than_max_bytes_is_refused_before_reading() -> None:
    def huge(h: Handler, s: StandIn) -> None:
        h.head(200, {"Content-Type": "video/mp4", "Content-Length": str(3 * 1024 * MIB)})
        h.wfile.write(b"x" * 1000)

    with stand_in(huge) as fake, ProviderClient(fake.base_url, KEY) as api:
        dest = io.BytesIO()
        with pytest.raises(InvalidAnswer) as info:
            api.download("video_1", "video", dest, max_bytes=2 * 1024 * MIB)
    assert info.value.message == (
        "The provider's video download is 3 GiB, more than the 2 GiB allowed; refused"
    )
    assert dest.getvalue() == b""


def test_a_body_shorter_than_its_content_range_total_is_unavailable() -> None:
    partial = media("video/mp4", b"x" * 1000, Content_Range="bytes 0-999/5000")
    with stand_in(partial) as fake, ProviderClient(fake.base_url, KEY) as api:
        with pytest.raises(ProviderUnavailable) as info:
            api.download("video_1", "video", io.BytesIO(), max_bytes=MIB)
    assert info.value.message == "The video download ended after 1000 of 5000 bytes"


@pytest.mark.parametrize(
    ("variant", "content_type", "message"),
    [
        (
            "thumbnail",
            "video/mp4",
            "The provider answered the thumbnail download with video/mp4, not an image",
        ),
        (
            "spritesheet",
            "application/octet-stream",
            "The provider answered the spritesheet download with application/octet-stream, "
            "not an image",
        ),
        (
            "video",
            "image/jpeg",
            "The provider answered the video download with image/jpeg, not a video",
        ),
        (
            "video",
            "application/octet-stream",
            "The provider answered the video download with application/octet-stream, not a video",
        ),
    ],
)
def test_a_download_of_the_wrong_media_type_is_refused(
    variant: str, content_type: str, message: str
) -> None:
    # An image variant of the wrong type is one the provider does not serve (LiteLLM answers
    # the MP4 again); a video of the wrong type is a bad answer.
    expected = InvalidAnswer if variant == "video" else VariantUnsupported
    with stand_in(media(content_type)) as fake, ProviderClient(fake.base_url, KEY) as api:
        dest = io.BytesIO()
        with pytest.raises(expected) as info:
            api.download("video_1", variant, dest, max_bytes=MIB)
    assert info.value.message == message
    assert dest.getvalue() == b""


def test_a_trickling_download_fails_at_its_deadline() -> None:
    def slow(h: Handler, s: StandIn) -> None:
        h.head(200, {"Content-Type": "image/webp", "Content-Length": "100"})
        h.trickle(b"x" * 100, every=1.0)

    with stand_in(slow) as fake, ProviderClient(fake.base_url, KEY, timeout=(2, 5)) as api:
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as info:
            api.download("video_1", "thumbnail", io.BytesIO(), max_bytes=MIB, deadline=2)
    assert time.monotonic() - started < 3.0
    assert "did not finish within 2 s" in info.value.message


@pytest.mark.parametrize(("min_rate", "succeeds"), [(100, True), (2000, False)])
def test_the_default_download_deadline_grows_with_the_announced_size(
    min_rate: int, succeeds: bool
) -> None:
    # 200 bytes in two halves 1.5 s apart: past the 1 s base deadline, but within
    # 1 s + 200 bytes at 100 bytes/s (3 s); not within 1 s + 200/2000 s (1.1 s).
    def halves(h: Handler, s: StandIn) -> None:
        h.head(200, {"Content-Type": "video/mp4", "Content-Length": "200"})
        h.wfile.write(b"x" * 100)
        h.wfile.flush()
        if not s.stop.wait(1.5):
            h.wfile.write(b"x" * 100)

    with stand_in(halves) as fake:
        with ProviderClient(fake.base_url, KEY, deadline=1, min_rate=min_rate) as api:
            dest = io.BytesIO()
            if succeeds:
                result = api.download("video_1", "video", dest, max_bytes=MIB)
                assert result.bytes_written == result.expected == 200
            else:
                with pytest.raises(ProviderUnavailable, match="did not finish within 1.1 s"):
                    api.download("video_1", "video", dest, max_bytes=MIB)


# --- 4. redirects ---------------------------------------------------------------------------


def redirect_to(location: Callable[[StandIn], str], status: int = 302) -> Respond:
    def answer(h: Handler, s: StandIn) -> None:
        h.send(status, b"", "text/plain", Location=location(s))

    return answer


@pytest.fixture
def internal() -> Iterator[StandIn]:
    """A server inside "our" network that a hostile provider points the client at."""
    with stand_in(media("video/mp4")) as server:
        yield server


def test_a_redirect_to_a_private_address_is_refused_and_never_requested(
    internal: StandIn,
) -> None:
    target = internal.root + "/internal"
    with stand_in(redirect_to(lambda s: target)) as fake:
        with ProviderClient(fake.base_url, KEY, allow_private=False) as api:
            with pytest.raises(InvalidAnswer) as info:
                api.download("video_1", "video", io.BytesIO(), max_bytes=MIB)
    assert info.value.message == (
        "The provider redirected the video download to 127.0.0.1, "
        "a private (loopback) address; refused"
    )
    assert internal.hits == []


def test_a_redirect_to_a_name_that_resolves_privately_is_refused(internal: StandIn) -> None:
    port = internal.root.rsplit(":", 1)[1]
    with stand_in(redirect_to(lambda s: f"http://localhost:{port}/x")) as fake:
        with ProviderClient(fake.base_url, KEY, allow_private=False) as api:
            with pytest.raises(InvalidAnswer, match=r"to localhost \((127\.0\.0\.1|::1)\), a "):
                api.download("video_1", "video", io.BytesIO(), max_bytes=MIB)
    assert internal.hits == []


@pytest.mark.parametrize("allow_private", [True, None])  # None: the base URL is on loopback
def test_a_redirect_to_another_origin_never_carries_the_key(
    internal: StandIn, allow_private: bool | None
) -> None:
    def answer(h: Handler, s: StandIn) -> None:
        if h.path.startswith("/v1/videos/"):  # first to itself (same origin), then away
            h.send(307, b"", "text/plain", Location="/cdn/video_1.mp4")
        else:
            h.send(302, b"", "text/plain", Location=internal.root + "/files/video_1.mp4")

    with stand_in(answer) as fake:
        with ProviderClient(fake.base_url, KEY, allow_private=allow_private) as api:
            dest = io.BytesIO()
            result = api.download("video_1", "video", dest, max_bytes=MIB)
    assert result.bytes_written == 1012 and dest.getvalue().startswith(b"\0\0\0\x18ftyp")
    assert [hit.path for hit in fake.hits] == [
        "/v1/videos/video_1/content?variant=video",
        "/cdn/video_1.mp4",
    ]
    assert all(hit.headers["Authorization"] == f"Bearer {KEY}" for hit in fake.hits)
    [elsewhere] = internal.hits
    assert elsewhere.path == "/files/video_1.mp4"
    assert "Authorization" not in elsewhere.headers
    assert elsewhere.headers["Accept-Encoding"] == "identity"


def test_more_redirects_than_allowed_are_refused() -> None:
    with stand_in(redirect_to(lambda s: s.root + "/again")) as fake:
        with ProviderClient(fake.base_url, KEY, max_redirects=2) as api:
            with pytest.raises(InvalidAnswer) as info:
                api.download("video_1", "thumbnail", io.BytesIO(), max_bytes=MIB)
    assert info.value.message == (
        "The provider redirected the thumbnail download more than 2 times; refused"
    )
    assert len(fake.hits) == 3  # the request and the two redirects it may follow


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/video.mp4", "file:///etc/passwd"])
def test_a_redirect_to_another_scheme_is_refused(target: str) -> None:
    with stand_in(redirect_to(lambda s: target)) as fake:
        with ProviderClient(fake.base_url, KEY, allow_private=True) as api:
            with pytest.raises(InvalidAnswer, match="URL, not http\\(s\\); refused"):
                api.download("video_1", "video", io.BytesIO(), max_bytes=MIB)
    assert len(fake.hits) == 1


def test_api_calls_never_follow_redirects(internal: StandIn) -> None:
    with stand_in(redirect_to(lambda s: internal.root + "/v1/videos/video_1")) as fake:
        with ProviderClient(fake.base_url, KEY, allow_private=True) as api:
            with pytest.raises(ProviderRejected, match="check the base URL"):
                api.retrieve("video_1")
            with pytest.raises(ProviderRejected, match="check the base URL"):
                api.list()
    assert internal.hits == []


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.2", "a private (loopback) address"),
        ("::1", "a private (loopback) address"),
        ("::ffff:127.0.0.1", "a private (loopback) address"),
        ("10.1.2.3", "a private address"),
        ("192.168.0.1", "a private address"),
        ("fd00::1", "a private address"),
        ("169.254.169.254", "a link-local address"),  # the cloud metadata service
        ("fe80::1%eth0", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("240.0.0.1", "a private address"),  # reserved, and Python counts it as private too
        ("100.64.0.1", "a non-public address"),
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
    ],
)
def test_forbidden_addresses_are_named(address: str, reason: str | None) -> None:
    assert forbidden_reason(address) == reason


# --- 5. redaction ---------------------------------------------------------------------------


def test_every_echo_of_the_key_is_redacted() -> None:
    echoes = [KEY, KEY.upper(), KEY[:12], KEY[3:], KEY[5:20].title(), f"key={KEY[-9:]}!"]

    def echo(h: Handler, s: StandIn) -> None:
        message = "Incorrect API key provided: " + " / ".join(echoes) + ". See the docs."
        h.send(401, body({"error": {"message": message, "code": "invalid_api_key"}}))

    with stand_in(echo) as fake, ProviderClient(fake.base_url, KEY) as api:
        with pytest.raises(ProviderError) as info:
            api.retrieve("video_1")
    message = info.value.message
    lowered = message.lower()
    for start in range(len(KEY) - 8 + 1):
        assert KEY[start : start + 8].lower() not in lowered, message
    assert message == (
        "Incorrect API key provided: [redacted] / [redacted] / [redacted] / [redacted] / "
        "[redacted] / key=[redacted]!. See the docs."
    )
    assert "[redacted]" in str(info.value) and KEY not in repr(info.value)


# --- 6. sync bounds -------------------------------------------------------------------------


def test_a_listing_that_never_ends_stops_after_max_pages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pages = iter(range(10**6))

    def forever(h: Handler, s: StandIn) -> None:
        n = next(pages)
        h.send(
            200,
            body(
                {"object": "list", "data": [video(f"v{n}")], "has_more": True, "last_id": f"v{n}"}
            ),
        )

    with stand_in(forever) as fake, ProviderClient(fake.base_url, KEY, max_pages=5) as api:
        with caplog.at_level(logging.WARNING, logger="jobs.provider.client"):
            listed = [v.id for v in api.iter_all(limit=1)]
    assert listed == ["v0", "v1", "v2", "v3", "v4"]
    assert len(fake.hits) == 5
    assert "still had more after 5 pages" in caplog.text


def test_a_listing_going_round_in_a_circle_stops(caplog: pytest.LogCaptureFixture) -> None:
    # after=None -> A, after=A -> B, after=B -> A again.
    cursor_after = {"": "A", "A": "B", "B": "A"}

    def circle(h: Handler, s: StandIn) -> None:
        after = h.path.partition("after=")[2].partition("&")[0]
        last = cursor_after[after]
        h.send(
            200,
            body(
                {
                    "object": "list",
                    "data": [video(f"{last}-{after}")],
                    "has_more": True,
                    "last_id": last,
                }
            ),
        )

    with stand_in(circle) as fake, ProviderClient(fake.base_url, KEY) as api:
        with caplog.at_level(logging.WARNING, logger="jobs.provider.client"):
            listed = [v.id for v in api.iter_all(limit=1)]
    assert listed == ["A-", "B-A", "A-B"]
    assert len(fake.hits) == 3
    assert "repeated a cursor" in caplog.text


# --- 7. field validation --------------------------------------------------------------------

BOUNDS = [
    ("id", 512),
    ("remixed_from_video_id", 512),
    ("model", 100),
    ("size", 20),
    ("seconds", 10),
    ("prompt", PROMPT_MAX_LENGTH),
]


@pytest.mark.parametrize(("name", "limit"), BOUNDS)
def test_each_field_is_accepted_up_to_its_column_and_refused_past_it(name: str, limit: int) -> None:
    assert getattr(RemoteVideo.from_json(video(**{name: "x" * limit})), name) == "x" * limit
    with pytest.raises(InvalidAnswer, match=rf"of {limit + 1:,} characters \(at most {limit:,}\)"):
        RemoteVideo.from_json(video(**{name: "x" * (limit + 1)}))


def test_a_status_is_normalised_and_its_raw_word_kept_but_cut() -> None:
    odd = RemoteVideo.from_json(video(status="x" * 16))
    assert (odd.status, odd.raw_status) == ("unknown", "x" * 16)
    long = RemoteVideo.from_json(video(status="waiting" * 20))
    assert long.status == "unknown" and long.raw_status == ("waiting" * 20)[:63] + "…"


def test_a_refused_field_is_named_in_words() -> None:
    with pytest.raises(InvalidAnswer) as info:
        RemoteVideo.from_json(video(size="x" * 300))
    assert info.value.message == "The provider sent a size of 300 characters (at most 20)"
    with pytest.raises(InvalidAnswer) as info:
        RemoteVideo.from_json(video(error={"code": "c" * 101, "message": "boom"}))
    assert info.value.message == "The provider sent an error code of 101 characters (at most 100)"


@pytest.mark.parametrize(
    "name",
    ["id", "model", "status", "prompt", "size", "seconds", "remixed_from_video_id", "object"],
)
def test_a_nul_in_any_string_field_is_refused(name: str) -> None:
    with pytest.raises(InvalidAnswer, match="containing a NUL character"):
        RemoteVideo.from_json(video(**{name: "a\x00b"}))
    with pytest.raises(InvalidAnswer, match="an error message containing a NUL"):
        RemoteVideo.from_json(video(error={"code": "x", "message": "a\x00b"}))


def test_a_long_error_message_is_cut_not_refused() -> None:
    long = RemoteVideo.from_json(video(status="failed", error={"message": "m" * 10_000}))
    assert long.error_message == "m" * 3999 + "…"
    short = RemoteVideo.from_json(video(error="m" * 4000))
    assert short.error_message == "m" * 4000
    lenient = RemoteVideo.from_json(video(seconds=12, progress="50", created_at="1759938772"))
    assert (lenient.seconds, lenient.progress) == ("12", 50)


def test_a_listing_skips_a_refused_item_but_refuses_an_overlong_cursor() -> None:
    page = parse_page({"data": [video("ok"), video("bad", size="x" * 21)], "has_more": False})
    assert [v.id for v in page.data] == ["ok"]
    with pytest.raises(InvalidAnswer, match="a list cursor \\(last_id\\) of 513 characters"):
        parse_page({"data": [], "has_more": True, "last_id": "c" * 513})


def test_a_refused_field_over_http_carries_the_status_and_request_id() -> None:
    def answer(h: Handler, s: StandIn) -> None:
        h.send(200, body(video(model="m" * 101)), x_request_id="req_42")

    with stand_in(answer) as fake, ProviderClient(fake.base_url, KEY) as api:
        with pytest.raises(InvalidAnswer) as info:
            api.retrieve("video_1")
        with pytest.raises(InvalidAnswer) as created:
            api.create("a cat")
    assert (info.value.status, info.value.request_id) == (200, "req_42")
    assert info.value.message == "The provider sent a model of 101 characters (at most 100)"
    assert created.value.request_id == "req_42"


def test_the_prompt_limit_is_defined_once() -> None:
    from jobs.lib import prompts

    assert prompts.PROMPT_MAX_LENGTH is PROMPT_MAX_LENGTH == 32_000


# --- the settings reach the client ----------------------------------------------------------


def test_shared_clients_are_keyed_on_their_limits() -> None:
    url = "http://127.0.0.1:9/v1"
    one = shared_client(url, KEY, (5, 30), 2, deadline=10, json_max_bytes=2048)
    assert shared_client(url, KEY, (5, 30), 2, deadline=10, json_max_bytes=2048) is one
    other = shared_client(url, KEY, (5, 30), 2, deadline=11, json_max_bytes=2048)
    assert other is not one and (other.deadline, other.json_max_bytes) == (11, 2048)


@pytest.mark.django_db
def test_a_providers_client_uses_the_settings(settings: Any) -> None:
    from jobs.models import Provider

    settings.PROVIDER_DEADLINE_SECONDS = 7
    settings.PROVIDER_JSON_MAX_BYTES = 1000
    settings.PROVIDER_LIST_MAX_BYTES = 2000
    settings.PROVIDER_MAX_REDIRECTS = 1
    settings.SYNC_MAX_PAGES = 4
    settings.ASSET_MIN_RATE = 500
    provider = Provider(name="P", base_url="http://127.0.0.1:9/v1", api_key_env="SIMULATOR_API_KEY")
    client = provider.client()
    assert (
        client.deadline,
        client.json_max_bytes,
        client.list_max_bytes,
        client.max_redirects,
        client.max_pages,
        client.min_rate,
    ) == (7, 1000, 2000, 1, 4, 500)
