"""What real gateways send, and OpenRouter's dialect: the client against the simulator's accents
(`simulator.configure(quirks=[...])`), the OpenRouter-dialect simulator, and stand-in servers
that show the exact requests the client sends."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from jobs.provider.client import ProviderClient
from jobs.provider.dialects import parse_models, resolution_and_ratio, size_from
from jobs.provider.errors import (
    InvalidAnswer,
    NotFound,
    NotOffered,
    NotReady,
    ProviderRejected,
    VariantUnsupported,
)
from jobs.provider.fields import normal_status
from jobs.provider.ids import decode_litellm, encode_litellm
from jobs.provider.schema import RemoteVideo
from tests.conftest import Simulator
from tests.unit.test_provider_client import KEY, MAX, Reply, Seen, fake_server, video_json

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(simulator: Simulator) -> Iterator[ProviderClient]:
    with ProviderClient(simulator.base_url, KEY, timeout=(2, 5)) as c:
        yield c


@pytest.fixture
def openrouter(openrouter_simulator: Simulator) -> Iterator[ProviderClient]:
    with ProviderClient(openrouter_simulator.base_url, KEY, dialect="openrouter") as c:
        yield c


def wait_until(
    api: ProviderClient, video_id: str, done: Callable[[RemoteVideo], bool]
) -> RemoteVideo:
    """Retrieve until `done` holds (the simulator runs at speed 40: well under a second)."""
    deadline = time.monotonic() + 20
    while True:
        video = api.retrieve(video_id)
        if done(video):
            return video
        assert time.monotonic() < deadline, f"{video_id} stayed {video.raw_status}"
        time.sleep(0.05)


def finished(video: RemoteVideo) -> bool:
    return video.is_terminal


# --- statuses, times, progress, errors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("pending", "queued"),
        ("submitted", "queued"),
        ("not_started", "queued"),
        ("processing", "in_progress"),
        ("Running", "in_progress"),
        ("generating", "in_progress"),
        ("in-progress", "in_progress"),
        ("succeeded", "completed"),
        ("SUCCESS", "completed"),
        ("done", "completed"),
        ("error", "failed"),
        ("failure", "failed"),
        ("canceled", "cancelled"),
        ("cancelled", "cancelled"),
        ("expired", "expired"),
        ("unknown", "unknown"),
        ("waiting_for_gpu", "unknown"),
        ("", "unknown"),
    ],
)
def test_a_gateways_status_is_normalised(raw: str, status: str) -> None:
    assert normal_status(raw) == status
    video = RemoteVideo.from_json({"id": "v", "status": raw})
    assert (video.status, video.raw_status) == (status, raw)
    assert video.is_terminal == (status in ("completed", "failed", "cancelled", "expired"))


def test_what_gateways_send_instead_of_the_spec_is_read() -> None:
    video = RemoteVideo.from_json(
        {
            "id": "task_abc",
            "status": "succeeded",
            "created_at": "2026-12-02T04:46:24Z",
            "completed_at": "2026-12-02T06:46:24+02:00",
            "expires_at": 1764660000.5,
            "error": {"message": "upstream said no", "type": "upstream_error"},
            "metadata": {"url": "https://cdn.example.com/v/task_abc.mp4"},
        }
    )
    assert video.created_at == video.completed_at == datetime(2026, 12, 2, 4, 46, 24, tzinfo=UTC)
    assert video.expires_at == datetime.fromtimestamp(1764660000.5, tz=UTC)
    assert (video.error_code, video.error_message) == ("upstream_error", "upstream said no")
    assert video.content_url == "https://cdn.example.com/v/task_abc.mp4"
    assert video.progress_known is False and video.progress == 100  # finished: all the way
    running = RemoteVideo.from_json({"id": "v", "status": "processing"})
    assert running.progress_known is False and running.progress == 0
    assert RemoteVideo.from_json({"id": "v", "progress": 40}).progress_known


@pytest.mark.parametrize(
    ("fields", "url"),
    [
        ({"url": "https://a.example/x.mp4"}, "https://a.example/x.mp4"),
        (
            {"metadata": {"url": "http://m.example/x.mp4"}, "url": "https://a.example/"},
            "http://m.example/x.mp4",
        ),
        (
            {"unsigned_urls": ["https://b.example/0.mp4", "https://b.example/1.mp4"]},
            "https://b.example/0.mp4",
        ),
        ({"metadata": {"url": "javascript:alert(1)"}}, None),
        ({"url": "/relative/x.mp4"}, None),
        ({"url": "https://" + "x" * 2100}, None),
        ({"url": "https://a.example/x y.mp4"}, None),
        ({"unsigned_urls": "https://not-a-list.example"}, None),
    ],
)
def test_a_content_url_is_taken_only_when_absolute_http_and_bounded(
    fields: dict[str, object], url: str | None
) -> None:
    assert RemoteVideo.from_json({"id": "v", **fields}).content_url == url


def test_the_simulator_gateway_accents_are_read_as_the_spec(
    api: ProviderClient, simulator: Simulator
) -> None:
    simulator.configure(quirks=["status_aliases", "rfc3339_times", "no_progress"])
    created = api.create("a lighthouse at dusk", seconds="4")
    assert (created.status, created.raw_status) == ("queued", "pending")
    assert created.created_at is not None and created.created_at.tzinfo is not None
    assert created.progress_known is False
    done = wait_until(api, created.id, finished)
    assert done.status == "completed" and done.progress == 100
    assert done.completed_at is not None and done.expires_at is not None


def test_an_unknown_status_keeps_the_job_running(api: ProviderClient, simulator: Simulator) -> None:
    simulator.configure(quirks=["unknown_status"], speed=4)
    created = api.create("slow clouds", seconds="4")
    seen = wait_until(api, created.id, lambda v: v.status != "queued")
    assert (seen.status, seen.raw_status) == ("unknown", "unknown")
    assert not seen.is_terminal


def test_an_error_sent_as_a_plain_string_is_the_message(
    api: ProviderClient, simulator: Simulator
) -> None:
    simulator.configure(quirks=["string_errors"], fail_rate=1)
    failed = wait_until(api, api.create("doomed", seconds="4").id, finished)
    assert failed.status == "failed"
    assert failed.error_message and failed.error_code is None
    assert isinstance(failed.raw["error"], str)


# --- ids ------------------------------------------------------------------------------------


def test_litellm_ids_decode_to_the_upstreams_own_id() -> None:
    encoded = encode_litellm("openai", "sora-2", "video_68e9a1b2c3")
    assert encoded.startswith("video_")
    decoded = decode_litellm(encoded)
    assert decoded is not None
    assert (decoded.provider, decoded.model_id, decoded.raw) == (
        "openai",
        "sora-2",
        "video_68e9a1b2c3",
    )
    colons = decode_litellm(encode_litellm("azure", "", "raw:with:colons"))
    assert colons is not None and colons.raw == "raw:with:colons" and colons.model_id == ""
    for plain in ["video_68e9a1b2c3", "task_123", "video_" + "@@@", "video_bm90IGxpdGVsbG0=", ""]:
        assert decode_litellm(plain) is None, plain


def test_litellm_1_108_ids_carry_the_deployment_and_re_encode_with_it() -> None:
    """As a real LiteLLM 1.108.7 proxy answered (2026-12-02): the deployment follows the id."""
    seen = (
        "video_bGl0ZWxsbTpjdXN0b21fbGxtX3Byb3ZpZGVyOm9wZW5haTttb2RlbF9pZDpzb3JhLTI7dmlkZW9faWQ6dmlk"
        "ZW9fZTA1OGU0NTJlNDJiMzc3YjU2MmExOTZlY2M4NDBmNDA7ZGVwbG95bWVudF9pZDoyMWM3NTBjZDY4OTU5ZTUw"
        "Yjk0YjU2Zjc4MTdlZDk5NzAyZDlhM2E4NWI4NWJjNjczOWFlNWU0OTFlNThiZmFk"
    )
    decoded = decode_litellm(seen)
    assert decoded is not None and decoded.raw == "video_e058e452e42b377b562a196ecc840f40"
    assert decoded.deployment_id.startswith("21c750cd")
    again = encode_litellm("openai", "sora-2", decoded.raw, decoded.deployment_id)
    assert again == seen
    text = "litellm:custom_llm_provider:openai;model_id:sora-2;video_id:v1;foo:bar"
    unknown_part = "video_" + base64.b64encode(text.encode()).decode()
    assert decode_litellm(unknown_part) is None  # a part this codec does not know: not guessed


def test_litellm_ids_through_the_simulator_link_a_remix_to_its_source(
    api: ProviderClient, simulator: Simulator
) -> None:
    simulator.configure(quirks=["litellm_ids"])
    source = wait_until(api, api.create("a red kite", seconds="4").id, finished)
    assert any(ch in source.id for ch in "/+=") or decode_litellm(source.id) is not None
    source_parts = decode_litellm(source.id)
    assert source_parts is not None and source_parts.provider == "openai"
    remix = api.remix(source.id, "a blue kite")
    assert remix.remixed_from_video_id == source_parts.raw  # LiteLLM names the raw id
    assert api.retrieve(remix.id).id == remix.id  # the encoded id, percent-encoded, finds it


def test_opaque_ids_are_percent_encoded_in_every_path(
    api: ProviderClient, simulator: Simulator
) -> None:
    simulator.configure(quirks=["opaque_ids"])
    video = wait_until(api, api.create("a paper boat", seconds="4").id, finished)
    assert video.id.endswith("@sim")
    dest = io.BytesIO()
    assert api.download(video.id, "video", dest, max_bytes=MAX).bytes_written > 0
    api.delete(video.id)
    with pytest.raises(NotFound):
        api.retrieve(video.id)


# --- content ----------------------------------------------------------------------------------


def test_the_video_is_fetched_from_the_url_the_answer_names(
    api: ProviderClient, simulator: Simulator
) -> None:
    simulator.configure(quirks=["content_url"])
    video = wait_until(api, api.create("a tram at night", seconds="4").id, finished)
    assert video.content_url and video.content_url.startswith(simulator.root)
    with pytest.raises(ProviderRejected):  # /content answers 404 with this accent
        api.download(video.id, "video", io.BytesIO(), max_bytes=MAX)
    dest = io.BytesIO()
    result = api.download(video.id, "video", dest, max_bytes=MAX, url=video.content_url)
    assert result.bytes_written == len(dest.getvalue()) > 0 and dest.getvalue()[4:8] == b"ftyp"


def test_a_content_url_elsewhere_gets_no_key_and_must_be_http() -> None:
    def mp4(seen: Seen) -> Reply:
        return 200, {"Content-Type": "video/mp4"}, b"\0\0\0\x18ftypmp42" + b"\0" * 100

    with fake_server(mp4) as cdn, fake_server(mp4) as home:
        with ProviderClient(home.base_url, KEY, allow_private=True) as api:
            api.download("v", "video", io.BytesIO(), max_bytes=MAX, url=cdn.base_url + "/x.mp4")
            with pytest.raises(InvalidAnswer) as info:
                api.download("v", "video", io.BytesIO(), max_bytes=MAX, url="file:///etc/passwd")
    assert "authorization" not in {name.lower() for name in cdn.seen[0].headers}
    assert "not http(s)" in info.value.message and not home.seen


def test_a_content_url_to_a_private_address_is_refused_for_a_public_provider() -> None:
    with ProviderClient("https://videos.example.com/v1", KEY) as api:
        with pytest.raises(InvalidAnswer) as info:
            api.download("v", "video", io.BytesIO(), max_bytes=MAX, url="http://127.0.0.1/x.mp4")
    assert info.value.message == (
        "The provider named for the video file 127.0.0.1, a private (loopback) address; refused"
    )


def test_content_before_completion_is_not_ready(api: ProviderClient, simulator: Simulator) -> None:
    simulator.configure(quirks=["content_400_until_done"], speed=2)
    created = api.create("a slow sunrise", seconds="4")
    with pytest.raises(NotReady) as info:
        api.download(created.id, "video", io.BytesIO(), max_bytes=MAX)
    assert info.value.status == 400 and "not completed" in info.value.message.lower()


def test_a_gateway_without_variants_is_told_before_the_mp4_is_read(
    api: ProviderClient, simulator: Simulator
) -> None:
    simulator.configure(quirks=["no_variants"])
    video = wait_until(api, api.create("a fox in snow", seconds="4").id, finished)
    for variant in ("thumbnail", "spritesheet"):
        dest = io.BytesIO()
        with pytest.raises(VariantUnsupported) as info:
            api.download(video.id, variant, dest, max_bytes=MAX)
        assert "video/mp4, not an image" in info.value.message and dest.getvalue() == b""
    assert api.download(video.id, "video", io.BytesIO(), max_bytes=MAX).bytes_written > 0


@pytest.mark.parametrize("status", [400, 404, 415])
def test_a_refused_variant_is_unsupported_but_a_refused_video_is_not(status: int) -> None:
    error = json.dumps({"error": {"message": "variant not supported"}}).encode()
    with fake_server(lambda seen: (status, JSON, error)) as fake:
        with ProviderClient(fake.base_url, KEY) as api:
            with pytest.raises(VariantUnsupported) as info:
                api.download("v", "thumbnail", io.BytesIO(), max_bytes=MAX)
            with pytest.raises(ProviderRejected) as video:
                api.download("v", "video", io.BytesIO(), max_bytes=MAX)
    assert info.value.status == status and not isinstance(video.value, VariantUnsupported)


# --- list, edit, extend, models ---------------------------------------------------------------


def test_the_routing_hint_goes_out_on_the_list(simulator: Simulator) -> None:
    simulator.configure(quirks=["list_needs_hint"])
    with ProviderClient(simulator.base_url, KEY) as plain:
        with pytest.raises(ProviderRejected) as info:
            plain.list()
    assert info.value.status == 400
    simulator.seed(2)
    with ProviderClient(simulator.base_url, KEY, routing_hint="openai") as hinted:
        assert len(list(hinted.iter_all(limit=1))) == 2
    page = json.dumps({"object": "list", "data": [], "has_more": False}).encode()
    with fake_server(lambda seen: (200, JSON, page)) as fake:
        with ProviderClient(fake.base_url, KEY, routing_hint="openai") as api:
            api.list(limit=5)
    assert parse_qs(urlsplit(fake.seen[0].path).query)["custom_llm_provider"] == ["openai"]


def test_edit_and_extend_send_the_documented_json() -> None:
    with fake_server(lambda seen: (200, JSON, video_json("video_new"))) as fake:
        with ProviderClient(fake.base_url, KEY) as api:
            assert api.edit("video/src+1=", "make it night", idempotency_key="k1").id == "video_new"
            api.extend("video/src+1=", "keep flying", 8, idempotency_key="k2")
    edit, extend = fake.seen
    assert (edit.method, edit.path, extend.path) == (
        "POST",
        "/v1/videos/edits",
        "/v1/videos/extensions",
    )
    assert json.loads(edit.body) == {"prompt": "make it night", "video": {"id": "video/src+1="}}
    assert json.loads(extend.body) == {
        "prompt": "keep flying",
        "seconds": "8",
        "video": {"id": "video/src+1="},
    }
    assert edit.headers["Idempotency-Key"] == "k1" and extend.headers["Idempotency-Key"] == "k2"


def test_edit_and_extend_against_the_simulator(api: ProviderClient, simulator: Simulator) -> None:
    source = wait_until(api, api.create("a koi pond", seconds="4").id, finished)
    edited = api.edit(source.id, "a koi pond in the rain")
    extended = api.extend(source.id, "the koi swim away", 4)
    assert edited.id != extended.id and not edited.is_terminal
    simulator.configure(quirks=["no_edits", "no_extensions"])
    with pytest.raises(NotOffered, match="does not offer edits"):
        api.edit(source.id, "again")
    with pytest.raises(NotOffered, match="does not offer extensions"):
        api.extend(source.id, "again", 4)


def test_models_come_from_get_models(api: ProviderClient, simulator: Simulator) -> None:
    ids = [model.id for model in api.models()]
    assert "sora-2" in ids and "sora-2-pro" in ids
    simulator.configure(quirks=["no_models"])
    with pytest.raises(NotOffered, match="no model list"):
        api.models()


def test_a_model_list_is_bounded_and_odd_entries_skipped() -> None:
    good = {
        "id": "good",
        "supported_durations": [4, 8, 8, 9.5, -1, 100000],
        "supported_sizes": ["1280x720", "9x9", "big"],
    }
    priced = {
        "id": "priced",
        "supported_durations": [5],
        "supported_resolutions": ["720p"],
        "supported_aspect_ratios": ["16:9", "1:1"],
        "pricing_skus": {
            "duration_seconds_720p": "0.25",
            "duration_seconds_with_audio_720p": "0.40",
            "video_tokens": "0.01",
            "image": "9",
        },
    }
    odd: list[object] = [{"id": "m" * 101}, {"id": None}, "not a model"]
    nonsense = {"id": "nonsense-price", "pricing": {"per_second": "-3"}}
    extra = [{"id": f"extra-{n}"} for n in range(600)]
    entries = [good, *odd, priced, nonsense, *extra]
    models = parse_models({"data": entries})
    assert len(models) == 500 - 3  # the first 500 entries are read, less the 3 unreadable
    first, second, third = models[:3]
    assert first.durations == (4, 8) and first.sizes == ("1280x720",)
    assert second.sizes == ("1280x720", "720x720")
    assert second.price_per_second == Decimal("0.4000")  # the highest per-second SKU
    assert second.price_for("1280x720") == Decimal("0.4000")
    assert third.price_per_second is None and first.price_per_second is None


# --- OpenRouter -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "resolution", "ratio"),
    [
        ("1280x720", "720p", "16:9"),
        ("720x1280", "720p", "9:16"),
        ("1920x1080", "1080p", "16:9"),
        ("1792x1024", "1080p", "16:9"),
        ("1024x1792", "1080p", "9:16"),
        ("720x720", "720p", "1:1"),
    ],
)
def test_a_size_maps_to_openrouters_resolution_and_aspect_ratio(
    size: str, resolution: str, ratio: str
) -> None:
    assert resolution_and_ratio(size) == (resolution, ratio)
    if size != "1792x1024" and size != "1024x1792":
        assert size_from(resolution, ratio) == size
    assert resolution_and_ratio("nonsense") is None and size_from("hd", "16:9") is None


def test_openrouter_create_sends_its_own_json() -> None:
    accepted = json.dumps(
        {"id": "job-1", "polling_url": "https://x/api/v1/videos/job-1", "status": "pending"}
    ).encode()
    with fake_server(lambda seen: (202, JSON, accepted)) as fake:
        with ProviderClient(fake.base_url, KEY, dialect="openrouter") as api:
            video = api.create("a heron", model="openai/sora-2", seconds="8", size="720x1280")
            api.extend("job-0", "it flies off", 4, model="openai/sora-2")
            with pytest.raises(NotOffered, match="whole number of seconds"):
                api.create("x", seconds="4.5")
    assert (video.id, video.status, video.raw_status) == ("job-1", "queued", "pending")
    create, extend = (json.loads(seen.body) for seen in fake.seen)
    assert create == {
        "prompt": "a heron",
        "model": "openai/sora-2",
        "duration": 8,
        "resolution": "720p",
        "aspect_ratio": "9:16",
    }
    assert extend == {
        "prompt": "it flies off",
        "model": "openai/sora-2",
        "duration": 4,
        "previous_job_id": "job-0",
    }
    assert [seen.path for seen in fake.seen] == ["/v1/videos", "/v1/videos"]


def test_openrouter_refuses_what_it_lacks_without_sending(
    openrouter: ProviderClient, openrouter_simulator: Simulator
) -> None:
    for call, words in [
        (lambda: openrouter.list(), "no list"),
        (lambda: list(openrouter.iter_all()), "no list"),
        (lambda: openrouter.remix("job-1", "x"), "no remix"),
        (lambda: openrouter.edit("job-1", "x"), "no edits"),
        (lambda: openrouter.delete("job-1"), "no delete"),
    ]:
        with pytest.raises(NotOffered, match=words):
            call()
    with pytest.raises(VariantUnsupported):
        openrouter.download("job-1", "thumbnail", io.BytesIO(), max_bytes=MAX)
    assert openrouter_simulator.stats()["requests"] == {}


def test_a_job_through_openrouter_end_to_end(
    openrouter: ProviderClient, openrouter_simulator: Simulator
) -> None:
    created = openrouter.create("a glass city", model="openai/sora-2", seconds=4, size="1280x720")
    assert created.id.startswith("job-") and created.status == "queued"
    done = wait_until(openrouter, created.id, finished)
    assert done.status == "completed" and done.progress == 100 and not done.progress_known
    assert done.content_url and done.content_url.startswith("http")
    assert isinstance(done.raw.get("usage"), dict) and "cost" in done.raw["usage"]
    dest = io.BytesIO()
    assert openrouter.download(done.id, "video", dest, max_bytes=MAX).bytes_written > 0
    assert dest.getvalue()[4:8] == b"ftyp"
    requests = openrouter_simulator.stats()["requests"]
    assert any("content" in route for route in requests)
    continued = openrouter.extend(done.id, "the city at night", 4, model="openai/sora-2")
    assert continued.id != done.id


def test_openrouter_models_name_durations_sizes_and_prices(openrouter: ProviderClient) -> None:
    models = {model.id: model for model in openrouter.models()}
    pro = models["openai/sora-2-pro"]
    assert pro.durations == (4, 8, 12)
    assert set(pro.sizes) == {"1280x720", "720x1280", "1920x1080", "1080x1920"}
    assert pro.price_for("1280x720") == Decimal("0.3000")
    assert pro.price_for("1920x1080") == Decimal("0.5000")
    assert pro.price_per_second == Decimal("0.5000")
