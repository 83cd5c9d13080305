"""jobs.provider.ProviderClient against the real simulator over HTTP.

A tiny local http.server stands in only for answers the simulator never gives (an HTML 404
for every path, a body shorter than its Content-Length, `retry-after-ms`, a redirect) and
to look at the raw requests the client sends.
"""

from __future__ import annotations

import io
import json
import pickle
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from jobs.provider.client import ProviderClient
from jobs.provider.errors import (
    NO_VIDEOS_API_MESSAGE,
    AssetsExpired,
    AuthenticationFailed,
    NotFound,
    NotReady,
    NoVideosApi,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from jobs.provider.retry import parse_retry_after
from jobs.provider.schema import RemoteVideo
from tests.conftest import Simulator, free_port, start_simulator, stop_simulator

KEY = "sk-test-0123456789-never-shown"
MAGIC = {
    "video": lambda b: b[4:8] == b"ftyp",
    "thumbnail": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
    "spritesheet": lambda b: b[:3] == b"\xff\xd8\xff",
}
CONTENT_TYPES = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}
MAX = 64 * 1024 * 1024  # downloads: far above any simulator clip


@pytest.fixture
def api(simulator: Simulator) -> Iterator[ProviderClient]:
    with ProviderClient(simulator.base_url, KEY, timeout=(2, 5)) as c:
        yield c


def requests_to(simulator: Simulator, route: str) -> int:
    return simulator.stats()["requests"].get(route, 0)


def png(width: int, height: int) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def assert_key_hidden(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


# --- a local stand-in for answers the simulator never gives -----------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class FakeServer:
    base_url: str
    seen: list[Seen] = field(default_factory=list)


@contextmanager
def fake_server(answer: Callable[[Seen], Reply]) -> Iterator[FakeServer]:
    server_state = FakeServer(base_url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length))
            server_state.seen.append(seen)
            status, headers, body = answer(seen)
            self.send_response(status)
            headers = {"Content-Length": str(len(body)), **headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            if int(headers["Content-Length"]) != len(body):
                self.close_connection = True  # a short body: hang up mid-response

        do_GET = do_POST = do_DELETE = handle_any

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server_state.base_url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()


def html_404(seen: Seen) -> Reply:
    return 404, {"Content-Type": "text/html"}, b"<html><body><h1>Not Found</h1></body></html>"


def video_json(video_id: str = "video_1", **extra: object) -> bytes:
    body = {
        "id": video_id,
        "object": "video",
        "model": "sora-2",
        "status": "queued",
        "progress": 0,
        "created_at": 1759938772,
        "seconds": "4",
        "size": "720x1280",
    }
    return json.dumps({**body, **extra}).encode()


# --- endpoints ------------------------------------------------------------------------------


def test_it_creates_a_video_from_form_fields(api: ProviderClient) -> None:
    video = api.create("A calico cat playing a piano", model="sora-2", seconds="4", size="1280x720")
    assert video.id
    assert video.status == "queued" and not video.is_terminal
    assert (video.model, video.seconds, video.size) == ("sora-2", "4", "1280x720")
    assert video.prompt == "A calico cat playing a piano"
    assert video.progress == 0
    assert video.created_at is not None and video.created_at.tzinfo is not None
    assert video.completed_at is None and video.remixed_from_video_id is None


def test_it_sends_create_as_multipart_and_every_post_with_an_idempotency_key() -> None:
    with fake_server(
        lambda seen: (
            200,
            {"Content-Type": "application/json"},
            video_json(remixed_from_video_id="video_0"),
        )
    ) as fake:
        with ProviderClient(fake.base_url, KEY) as api:
            api.create("a cat", seconds=8, idempotency_key="key-1")
            api.create("a dog", input_reference=("ref.png", png(720, 1280), "image/png"))
            api.remix("video_0", "make it sepia")
            api.retrieve("video_1")
    first, second, remix, get = fake.seen
    assert first.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="prompt"\r\n\r\na cat' in first.body
    assert b'name="seconds"\r\n\r\n8' in first.body  # an int goes out as the string the spec wants
    assert b'name="model"' not in first.body  # unset fields are left to the provider's defaults
    assert first.headers["Idempotency-Key"] == "key-1"
    assert first.headers["Authorization"] == f"Bearer {KEY}"
    assert b'name="input_reference"; filename="ref.png"' in second.body
    assert b"Content-Type: image/png" in second.body
    assert str(uuid.UUID(second.headers["Idempotency-Key"])) == second.headers["Idempotency-Key"]
    assert remix.path == "/v1/videos/video_0/remix"
    assert remix.headers["Content-Type"] == "application/json"
    assert json.loads(remix.body) == {"prompt": "make it sepia"}
    assert uuid.UUID(remix.headers["Idempotency-Key"])
    assert remix.headers["Idempotency-Key"] != second.headers["Idempotency-Key"]
    assert "Idempotency-Key" not in get.headers


def test_it_accepts_an_input_reference_of_the_requested_size(api: ProviderClient) -> None:
    video = api.create(
        "first frame", size="1280x720", input_reference=("ref.png", png(1280, 720), "image/png")
    )
    assert video.status == "queued"


def test_it_rejects_an_input_reference_of_another_size(api: ProviderClient) -> None:
    with pytest.raises(ProviderRejected) as info:
        api.create(
            "first frame", size="1280x720", input_reference=("ref.png", png(640, 360), "image/png")
        )
    assert info.value.status == 400
    assert info.value.param == "input_reference"
    assert type(info.value) is ProviderRejected


def test_it_retrieves_a_video(api: ProviderClient, simulator: Simulator) -> None:
    created = api.create("a lighthouse at dusk")
    assert api.retrieve(created.id).id == created.id
    [seeded] = simulator.seed(1)
    video = api.retrieve(seeded["id"])
    assert video.status == "completed" and video.is_terminal
    assert video.progress == 100
    assert video.completed_at is not None and video.expires_at is not None
    assert video.expires_at > video.completed_at
    assert video.raw["id"] == seeded["id"]


def test_it_passes_on_how_soon_polling_again_is_useful(
    api: ProviderClient, simulator: Simulator
) -> None:
    queued = api.retrieve(api.create("a slow render", seconds="12").id)
    assert queued.poll_after is not None and queued.poll_after > 0
    [done] = simulator.seed(1)
    assert api.retrieve(done["id"]).poll_after is None


def test_it_lists_a_page_and_iterates_over_every_page(
    api: ProviderClient, simulator: Simulator
) -> None:
    ids = {video["id"] for video in simulator.seed(5)}
    page = api.list(limit=2)
    assert len(page.data) == 2 and page.has_more
    assert (page.first_id, page.last_id) == (page.data[0].id, page.data[-1].id)
    before = requests_to(simulator, "GET /v1/videos")
    listed = [video.id for video in api.iter_all(limit=2)]
    assert sorted(listed) == sorted(ids)  # each once
    assert requests_to(simulator, "GET /v1/videos") - before == 3  # 2 + 2 + 1
    ascending = [video.id for video in api.iter_all(limit=2, order="asc")]
    assert ascending == listed[::-1]
    last = api.list(after=listed[-2], limit=2)
    assert [video.id for video in last.data] == [listed[-1]] and not last.has_more


def test_an_empty_list_has_no_cursor(api: ProviderClient) -> None:
    page = api.list()
    assert (page.data, page.has_more, page.first_id, page.last_id) == ([], False, None, None)
    assert list(api.iter_all()) == []


def test_it_remixes_a_completed_video(api: ProviderClient, simulator: Simulator) -> None:
    [source] = simulator.seed(1)
    remix = api.remix(source["id"], "make it sepia", idempotency_key=str(uuid.uuid4()))
    assert remix.id != source["id"]
    assert remix.remixed_from_video_id == source["id"]
    assert remix.status == "queued" and remix.prompt == "make it sepia"


def test_it_deletes_a_video(api: ProviderClient, simulator: Simulator) -> None:
    [video] = simulator.seed(1)
    assert api.delete(video["id"]) is None  # type: ignore[func-returns-value]  # pinned at run time
    with pytest.raises(NotFound):
        api.retrieve(video["id"])


@pytest.mark.parametrize("variant", ["video", "thumbnail", "spritesheet"])
def test_it_downloads_each_variant(
    api: ProviderClient, simulator: Simulator, variant: str, tmp_path: Path
) -> None:
    [video] = simulator.seed(1)
    buffer = io.BytesIO()
    result = api.download(video["id"], variant, buffer, max_bytes=MAX, chunk_size=1024)
    data = buffer.getvalue()
    assert result.bytes_written == len(data) > 0
    assert MAGIC[variant](data)
    assert (result.content_type or "").startswith(CONTENT_TYPES[variant])
    target = tmp_path / f"{variant}.bin"
    with target.open("wb") as dest:
        api.download(video["id"], variant, dest, max_bytes=MAX)
    assert target.read_bytes() == data


def test_a_download_that_stops_short_is_unavailable_not_complete() -> None:
    def short(seen: Seen) -> Reply:
        return 200, {"Content-Type": "video/mp4", "Content-Length": "100000"}, b"\0\0\0\x18ftyp"

    with fake_server(short) as fake, ProviderClient(fake.base_url, KEY, max_retries=0) as api:
        with pytest.raises(ProviderUnavailable) as info:
            api.download("video_1", "video", io.BytesIO(), max_bytes=MAX)
    assert "broke off" in info.value.message or "ended after" in info.value.message


def test_worker_threads_can_share_one_client(
    api: ProviderClient, simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    ids = [video["id"] for video in simulator.seed(4)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        found = list(pool.map(lambda i: api.retrieve(ids[i % 4]).id, range(64)))
    assert found == [ids[i % 4] for i in range(64)]
    assert "pool is full" not in caplog.text  # pool_maxsize covers a 16-thread pool


def test_check_reports_that_the_videos_api_answered(
    api: ProviderClient, simulator: Simulator
) -> None:
    report = api.check()
    assert report.key_accepted is True
    assert report.message.startswith("The Videos API answers and the key is accepted")
    listed = report.finding("list")
    assert listed is not None and listed.works and "no jobs yet" in listed.words
    variants = report.finding("variants")
    assert variants is not None and variants.works is None  # nothing finished to try it on
    simulator.seed(1)
    report = api.check()
    assert report.suggested["serves_variants"] is True
    assert simulator.stats()["jobs_created"] == 0  # seeding is not a create: the check made none


# --- error mapping --------------------------------------------------------------------------


def test_a_bad_field_is_rejected_with_param_code_and_request_id(api: ProviderClient) -> None:
    with pytest.raises(ProviderRejected) as info:
        api.create("a cat", seconds="5")
    error = info.value
    assert type(error) is ProviderRejected
    assert (error.status, error.param, error.type) == (400, "seconds", "invalid_request_error")
    assert error.code and error.request_id
    assert error.message and error.message in str(error) and error.request_id in str(error)


def test_a_wrong_key_is_an_authentication_failure(tmp_path: Path) -> None:
    secured = start_simulator(tmp_path, "--api-key", "the-right-key-42", "--speed", "40")
    try:
        with ProviderClient(secured.base_url, KEY) as api:
            with pytest.raises(AuthenticationFailed) as info:
                api.list()
            assert info.value.status == 401 and info.value.message
            assert_key_hidden(str(info.value), repr(info.value), info.value.message)
            with pytest.raises(AuthenticationFailed):
                api.create("a cat")
        with ProviderClient(secured.base_url, "the-right-key-42") as api:
            assert api.list().data == []
    finally:
        stop_simulator(secured)


def test_an_unknown_id_is_not_found(api: ProviderClient) -> None:
    with pytest.raises(NotFound) as info:
        api.retrieve("video_does_not_exist")
    assert info.value.status == 404 and type(info.value) is NotFound


def test_expired_assets_are_reported_as_such(api: ProviderClient, simulator: Simulator) -> None:
    [video] = simulator.seed(1)
    simulator.expire(video["id"])
    with pytest.raises(AssetsExpired):
        api.download(video["id"], "video", io.BytesIO(), max_bytes=MAX)


def test_a_410_is_assets_expired() -> None:
    gone = (
        410,
        {"Content-Type": "application/json"},
        b'{"error": {"message": "Gone", "type": "invalid_request_error"}}',
    )
    with fake_server(lambda seen: gone) as fake, ProviderClient(fake.base_url, KEY) as api:
        with pytest.raises(AssetsExpired):
            api.download("video_1", "thumbnail", io.BytesIO(), max_bytes=MAX)


def test_a_400_saying_expired_is_assets_expired() -> None:
    def answer(seen: Seen) -> Reply:
        code = "video_expired" if "variant=video" in seen.path else "video_not_ready"
        message = f"Video 'expiry-test' cannot be downloaded ({code})."
        return 400, {}, json.dumps({"error": {"message": message, "code": code}}).encode()

    with fake_server(answer) as fake, ProviderClient(fake.base_url, KEY) as api:
        with pytest.raises(AssetsExpired):
            api.download("expiry-test", "video", io.BytesIO(), max_bytes=MAX)
        # Not ready is not expired: it is worth asking again later (new-api says it this way).
        with pytest.raises(NotReady) as info:
            api.download("expiry-test", "thumbnail", io.BytesIO(), max_bytes=MAX)
    assert info.value.code == "video_not_ready" and info.value.status == 400


def test_a_429_is_retried_after_the_time_it_asks_for(
    api: ProviderClient, simulator: Simulator
) -> None:
    simulator.configure(retry_after=1)
    simulator.script_faults("429", count=1, method="GET", path="/v1/videos")
    started = time.monotonic()
    assert api.list().data == []
    assert time.monotonic() - started >= 1
    assert requests_to(simulator, "GET /v1/videos") == 2


def test_a_429_asking_for_longer_than_the_cap_is_raised_at_once(
    simulator: Simulator,
) -> None:
    simulator.configure(retry_after=30)
    try:
        simulator.script_faults("429", count=1, method="GET", path="/v1/videos")
        started = time.monotonic()
        with ProviderClient(simulator.base_url, KEY, retry_after_cap=20) as api:
            with pytest.raises(ProviderRateLimited) as info:
                api.list()
    finally:
        simulator.configure(retry_after=1)  # the fixture does not reset this setting
    assert time.monotonic() - started < 1
    assert info.value.retry_after == 30 and info.value.status == 429
    assert requests_to(simulator, "GET /v1/videos") == 1


def test_retry_after_ms_is_preferred_and_honoured() -> None:
    answers = iter(
        [
            (429, {"retry-after-ms": "300", "Retry-After": "10"}, b""),
            (200, {"Content-Type": "application/json"}, b'{"object": "list", "data": []}'),
        ]
    )
    with fake_server(lambda seen: next(answers)) as fake:
        with ProviderClient(fake.base_url, KEY, retry_after_cap=5) as api:
            started = time.monotonic()
            assert api.list().data == []
            assert 0.3 <= time.monotonic() - started < 5
    assert len(fake.seen) == 2


@pytest.mark.parametrize("fault", ["500", "502", "503", "drop"])
def test_a_transient_failure_on_a_get_is_retried(
    api: ProviderClient, simulator: Simulator, fault: str
) -> None:
    [video] = simulator.seed(1)
    simulator.script_faults(fault, count=1, method="GET", path="/v1/videos/")
    assert api.retrieve(video["id"]).id == video["id"]
    assert simulator.stats()["per_video"][video["id"]]["retrieve"] == 2


def test_retries_run_out_and_raise_unavailable(api: ProviderClient, simulator: Simulator) -> None:
    simulator.script_faults("502", count=3, method="GET", path="/v1/videos")
    with pytest.raises(ProviderUnavailable) as info:
        api.list()
    assert type(info.value) is ProviderUnavailable
    assert info.value.status == 502 and "HTTP 502" in info.value.message  # not the HTML page
    assert not info.value.outcome_unknown
    assert requests_to(simulator, "GET /v1/videos") == 3


def test_a_malformed_body_is_unavailable(api: ProviderClient, simulator: Simulator) -> None:
    [video] = simulator.seed(1)
    simulator.script_faults("malformed", count=1, method="GET", path="/v1/videos/")
    with pytest.raises(ProviderUnavailable) as info:
        api.retrieve(video["id"])
    assert "not JSON" in info.value.message
    assert api.retrieve(video["id"]).id == video["id"]


def test_a_get_that_times_out_is_retried_then_unavailable(simulator: Simulator) -> None:
    simulator.script_faults("timeout", count=2, method="GET", path="/v1/videos")
    with ProviderClient(simulator.base_url, KEY, timeout=(2, 1), max_retries=1) as api:
        with pytest.raises(ProviderUnavailable) as info:
            api.list()
    assert "did not answer" in info.value.message and not info.value.outcome_unknown
    assert requests_to(simulator, "GET /v1/videos") == 2


def test_a_post_is_never_retried(api: ProviderClient, simulator: Simulator) -> None:
    simulator.script_faults("500", count=1, method="POST", path="/v1/videos")
    with pytest.raises(ProviderUnavailable) as info:
        api.create("a cat")
    assert info.value.status == 500 and not info.value.outcome_unknown
    stats = simulator.stats()
    assert stats["requests"].get("POST /v1/videos") == 1 and stats["jobs_created"] == 0


@pytest.mark.parametrize("fault", ["accept_then_drop", "accept_then_timeout"])
def test_a_post_whose_answer_is_lost_has_an_unknown_outcome_and_can_be_resent(
    simulator: Simulator, fault: str
) -> None:
    simulator.script_faults(fault, count=1, method="POST", path="/v1/videos")
    key = str(uuid.uuid4())
    with ProviderClient(simulator.base_url, KEY, timeout=(2, 1)) as api:
        with pytest.raises(ProviderUnavailable) as info:
            api.create("a cat", idempotency_key=key)
        assert info.value.outcome_unknown
        assert simulator.stats()["requests"].get("POST /v1/videos") == 1
        first = api.create("a cat", idempotency_key=key)
        again = api.create("a cat", idempotency_key=key)
    assert first.id == again.id
    assert simulator.stats()["jobs_created"] == 1
    assert [video.id for video in api.iter_all()] == [first.id]


def test_a_post_that_cannot_connect_has_a_known_outcome() -> None:
    with ProviderClient(f"http://127.0.0.1:{free_port()}/v1", KEY, timeout=(1, 1)) as api:
        with pytest.raises(ProviderUnavailable) as info:
            api.create("a cat")
    assert not info.value.outcome_unknown
    assert "Could not connect" in info.value.message
    assert_key_hidden(str(info.value), repr(info.value))


def test_a_gateway_timeout_on_a_post_has_an_unknown_outcome() -> None:
    answers = {"POST": (504, {"Content-Type": "text/html"}, b"<html>Gateway Timeout</html>")}
    with fake_server(lambda seen: answers[seen.method]) as fake:
        with ProviderClient(fake.base_url, KEY) as api:
            with pytest.raises(ProviderUnavailable) as info:
                api.create("a cat")
    assert info.value.outcome_unknown and info.value.status == 504
    assert len(fake.seen) == 1


def test_a_post_answered_with_an_unreadable_body_has_an_unknown_outcome() -> None:
    ok_but_broken = (200, {"Content-Type": "application/json"}, b'{"id": "video_1", "stat')
    with fake_server(lambda seen: ok_but_broken) as fake, ProviderClient(fake.base_url, KEY) as c:
        with pytest.raises(ProviderUnavailable) as info:
            c.create("a cat")
    assert info.value.outcome_unknown


def test_a_redirected_post_is_not_followed() -> None:
    moved = (301, {"Location": "https://elsewhere.invalid/v1/videos"}, b"")
    with fake_server(lambda seen: moved) as fake, ProviderClient(fake.base_url, KEY) as api:
        with pytest.raises(ProviderRejected) as info:
            api.create("a cat")
    assert "base URL" in info.value.message and len(fake.seen) == 1


def test_a_server_without_the_videos_api_is_named_as_such() -> None:
    with fake_server(html_404) as fake, ProviderClient(fake.base_url, KEY) as api:
        with pytest.raises(NoVideosApi) as info:
            api.list()
        assert info.value.message == NO_VIDEOS_API_MESSAGE.format("GET /videos")
        assert info.value.message == (
            "This provider does not offer the Videos API (GET /videos answered 404)"
        )
        with pytest.raises(NoVideosApi):
            api.check()
        with pytest.raises(NoVideosApi):
            api.retrieve("video_1")  # an HTML 404 is not the API saying "no such video"
        with pytest.raises(NoVideosApi):
            api.create("a cat")


def test_a_base_url_without_v1_is_not_the_videos_api(simulator: Simulator) -> None:
    [video] = simulator.seed(1)
    with ProviderClient(simulator.root, KEY) as api:
        with pytest.raises(NoVideosApi):
            api.list()
        with pytest.raises(NoVideosApi):  # 404 "Invalid URL (...)", not "no such video"
            api.retrieve(video["id"])


def test_ids_are_quoted_into_one_path_segment(api: ProviderClient, simulator: Simulator) -> None:
    simulator.seed(1)
    for video_id in ["../x", "a/b", "x?limit=1", "x#y", "%2e%2e", "v" * 512]:
        with pytest.raises(NotFound):
            api.retrieve(video_id)
        with pytest.raises(NotFound):
            api.download(video_id, "video", io.BytesIO(), max_bytes=MAX)
    for video_id in ["..", "."]:  # requests would resolve these dot segments away
        with pytest.raises(NotFound):
            api.retrieve(video_id)
    requests = simulator.stats()["requests"]
    assert "GET /v1/videos" not in requests  # nothing escaped into the list route


def test_ids_reach_the_server_percent_encoded() -> None:
    with fake_server(
        lambda seen: (200, {"Content-Type": "application/json"}, video_json("../x"))
    ) as fake:
        with ProviderClient(fake.base_url, KEY) as api:
            api.retrieve("../x")
            api.remix("a/b?c", "p")
    assert [seen.path for seen in fake.seen] == ["/v1/videos/..%2Fx", "/v1/videos/a%2Fb%3Fc/remix"]


def test_the_key_never_appears_in_reprs_or_errors(simulator: Simulator) -> None:
    api = ProviderClient(simulator.base_url, KEY)
    assert_key_hidden(repr(api), str(api))
    simulator.script_faults("503", count=3, method="GET", path="/v1/videos")
    errors: list[ProviderError] = []
    for call in (
        lambda: api.list(),
        lambda: api.retrieve("nope"),
        lambda: api.create("x", seconds="5"),
    ):
        try:
            call()
        except ProviderError as exc:
            errors.append(exc)
    assert len(errors) == 3
    for error in errors:
        assert_key_hidden(str(error), repr(error), error.message)
    api.close()


def test_a_provider_echoing_the_key_is_redacted() -> None:
    echo = (
        401,
        {"Content-Type": "application/json"},
        json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}."}}).encode(),
    )
    with fake_server(lambda seen: echo) as fake, ProviderClient(fake.base_url, KEY) as api:
        with pytest.raises(AuthenticationFailed) as info:
            api.retrieve("video_1")
    assert_key_hidden(str(info.value), info.value.message)
    assert "[redacted]" in info.value.message


def test_errors_survive_pickling() -> None:
    error = ProviderRateLimited("slow down", status=429, retry_after=2.5, request_id="req_1")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.message, copy.retry_after, copy.request_id) == (
        ProviderRateLimited,
        "slow down",
        2.5,
        "req_1",
    )
    assert str(copy) == "slow down (request id req_1)"


# --- parsing --------------------------------------------------------------------------------


def test_from_json_reads_a_full_video_object() -> None:
    video = RemoteVideo.from_json(
        {
            "id": "video_68d7",
            "object": "video",
            "model": "sora-2",
            "status": "failed",
            "progress": 33,
            "created_at": 1759938772,
            "completed_at": 1759938800,
            "expires_at": None,
            "prompt": "A cat",
            "size": "1280x720",
            "seconds": "8",
            "remixed_from_video_id": "video_1",
            "error": {"code": "moderation_blocked", "message": "Blocked by moderation"},
        }
    )
    assert video.created_at == datetime.fromtimestamp(1759938772, tz=UTC)
    assert video.completed_at is not None and video.expires_at is None
    assert (video.error_code, video.error_message) == (
        "moderation_blocked",
        "Blocked by moderation",
    )
    assert video.is_terminal and video.status == "failed"
    assert video.remixed_from_video_id == "video_1"


def test_from_json_tolerates_what_gateways_send() -> None:
    raw = {
        "id": "video_x",
        "status": "expired",
        "seconds": 12,
        "progress": "140",
        "created_at": "1759938772",
        "quality": "standard",
        "download_url": "https://cdn/x",
    }
    video = RemoteVideo.from_json(raw)
    assert (video.status, video.raw_status) == ("expired", "expired")
    assert video.is_terminal  # gateways end jobs as expired (OpenRouter, reference section 9)
    assert not video.progress_known or video.progress == 100
    assert video.seconds == "12" and video.progress == 100
    assert video.created_at == datetime.fromtimestamp(1759938772, tz=UTC)
    assert (video.model, video.size, video.prompt, video.completed_at) == ("", "", None, None)
    assert video.error_code is None and video.error_message is None
    assert video.raw["download_url"] == "https://cdn/x"
    assert "download_url" not in repr(video)
    assert RemoteVideo.from_json({"id": "v", "progress": -5}).progress == 0
    assert RemoteVideo.from_json({"id": "v", "progress": "n/a"}).progress == 0
    assert RemoteVideo.from_json({"id": "v", "seconds": 4.0}).seconds == "4"
    assert RemoteVideo.from_json({"id": "v", "error": "boom"}).error_message == "boom"
    iso = RemoteVideo.from_json({"id": "v", "completed_at": "2026-01-02T03:04:05Z"})
    assert iso.completed_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    millis = RemoteVideo.from_json({"id": "v", "created_at": 1759938772123})
    assert millis.created_at is not None and millis.created_at.year == 2025


def test_from_json_compares_videos_without_raw() -> None:
    a = RemoteVideo.from_json({"id": "v", "status": "queued"})
    b = RemoteVideo.from_json({"id": "v", "status": "queued", "extra": 1})
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize("payload", [None, [], "video_1", {"status": "queued"}, {"id": ""}])
def test_from_json_refuses_what_is_not_a_video(payload: object) -> None:
    with pytest.raises(ProviderUnavailable):
        RemoteVideo.from_json(payload)


def test_parse_retry_after_reads_ms_seconds_and_dates() -> None:
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    wait = parse_retry_after({"retry-after": date})
    assert wait is not None and 55 <= wait <= 61


def test_a_base_url_must_be_http() -> None:
    with pytest.raises(ValueError):
        ProviderClient("127.0.0.1:8001/v1", KEY)


def test_a_key_read_from_a_file_is_stripped_and_a_broken_one_is_refused_quietly(
    simulator: Simulator,
) -> None:
    with ProviderClient(simulator.base_url, f" {KEY}\n") as api:
        assert api.list().data == []
    with pytest.raises(ValueError) as info:
        ProviderClient(simulator.base_url, f"{KEY}\nX-Injected: 1")
    assert_key_hidden(str(info.value))
