"""The simulator's OpenRouter dialect (`--dialect openrouter`), over real HTTP.

What it must match is OpenRouter's published OpenAPI document (OpenRouterTeam/typescript-sdk
`.speakeasy/in.openapi.yaml`) and its video skill (OpenRouterTeam/skills
`skills/openrouter-video/SKILL.md`): 202 on create, statuses pending..expired, `unsigned_urls`,
`usage.cost`, `error` as a string, `{"error": {"code": <int>, "message"}}`, previous_job_id,
and webhooks signed `X-OpenRouter-Signature: t=<ts>,v1=<hex HMAC-SHA256 of "<ts>,<body>">`.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import av
import pytest
import requests

from tests.conftest import Delivery, Simulator

AUTH = {"Authorization": "Bearer sk-test"}
STATUSES = {"pending", "in_progress", "completed", "failed", "cancelled", "expired"}


@pytest.fixture(autouse=True)
def _restore(openrouter_simulator_process: Simulator) -> Iterator[None]:
    yield  # what the shared fixture does not reset
    openrouter_simulator_process.configure(api_key=None, webhook_secret="whsec_dGVzdA==")


def call(sim: Simulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    return requests.request(method, sim.base_url + path, headers=headers, timeout=15, **kwargs)


def create(sim: Simulator, **body: Any) -> requests.Response:
    return call(sim, "POST", "/videos", json={"model": "openai/sora-2", "prompt": "a fox", **body})


def created(sim: Simulator, **body: Any) -> dict[str, Any]:
    r = create(sim, **body)
    assert r.status_code == 202, r.text
    return dict(r.json())


def wait_until(check: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)
    return result


def finished(sim: Simulator, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        body = call(sim, "GET", f"/videos/{job_id}").json()
        return body if body["status"] not in ("pending", "in_progress") else None

    return dict(wait_until(ended))


def assert_error(r: requests.Response, status: int, words: str = "") -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"code", "message"}
    assert error["code"] == status and isinstance(error["message"], str)
    assert words in error["message"]


def mp4(data: bytes) -> tuple[int, int, float]:
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        assert container.duration is not None
        return stream.width, stream.height, container.duration / 1_000_000


def test_models_list_each_models_choices_and_prices_without_a_key(
    openrouter_simulator: Simulator,
) -> None:
    r = requests.get(f"{openrouter_simulator.base_url}/videos/models", timeout=10)

    assert r.status_code == 200
    models = {m["id"]: m for m in r.json()["data"]}
    sora = models["openai/sora-2"]
    assert sora["supported_durations"] == [4, 8, 12]
    assert sora["supported_resolutions"] == ["720p"]
    assert sora["supported_aspect_ratios"] == ["16:9", "9:16"]
    assert sora["supported_sizes"] == ["1280x720", "720x1280"]
    assert sora["pricing_skus"] == {"duration_seconds_720p": "0.10"}
    assert models["google/veo-3.1-lite"]["supported_durations"] == [4, 6, 8]
    required = {"id", "canonical_slug", "name", "created", "supported_frame_images", "seed"}
    assert all(required <= set(m) for m in models.values())


def test_a_job_is_accepted_with_202_then_polled_to_completed_with_its_cost(
    openrouter_simulator: Simulator,
) -> None:
    r = create(openrouter_simulator, duration=8, resolution="720p", aspect_ratio="16:9")

    assert r.status_code == 202
    job = r.json()
    assert set(job) == {"id", "polling_url", "status"} and job["status"] == "pending"
    assert job["id"].startswith("job-")
    assert job["polling_url"] == f"{openrouter_simulator.base_url}/videos/{job['id']}"
    seen: set[str] = set()

    def done() -> dict[str, Any] | None:
        body = requests.get(job["polling_url"], headers=AUTH, timeout=10).json()
        seen.add(body["status"])
        return body if body["status"] == "completed" else None

    body = wait_until(done)
    assert seen <= {"pending", "in_progress", "completed"}
    assert "progress" not in body and "error" not in body
    assert body["usage"] == {"cost": 0.8, "is_byok": False}  # 8 s at $0.10
    assert body["generation_id"].startswith("gen-")
    assert body["unsigned_urls"] == [
        f"{openrouter_simulator.base_url}/videos/{job['id']}/content?index=0"
    ]


def test_content_is_an_mp4_of_the_asked_length_and_shape_with_ranges(
    openrouter_simulator: Simulator,
) -> None:
    job = created(openrouter_simulator, duration=4, size="720x1280")
    url = finished(openrouter_simulator, job["id"])["unsigned_urls"][0]

    whole = requests.get(url, headers=AUTH, timeout=30)
    assert whole.status_code == 200 and whole.headers["Content-Type"] == "video/mp4"
    assert mp4(whole.content) == (720, 1280, pytest.approx(4.0, abs=0.3))
    part = requests.get(url, headers={**AUTH, "Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206 and part.content == whole.content[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(whole.content)}"
    path = f"/videos/{job['id']}/content"
    beyond = call(openrouter_simulator, "GET", path, headers={"Range": "bytes=999999999-"})
    assert_error(beyond, 416)
    assert_error(call(openrouter_simulator, "GET", path, params={"index": 1}), 404, "index 0")
    assert_error(call(openrouter_simulator, "GET", f"{path}?index="), 400, "index")
    assert_error(call(openrouter_simulator, "GET", f"{path}?variant=thumbnail"), 400, "variant")
    assert requests.get(url, timeout=10).status_code == 401


def test_content_before_the_end_is_refused(openrouter_simulator: Simulator) -> None:
    openrouter_simulator.configure(speed=0.5)
    job = created(openrouter_simulator)
    r = call(openrouter_simulator, "GET", f"/videos/{job['id']}/content?index=0")
    assert_error(r, 400, "once it is completed")


def test_size_and_resolution_with_aspect_ratio_are_the_same_choice(
    openrouter_simulator: Simulator,
) -> None:
    pro = {"model": "openai/sora-2-pro", "duration": 4}
    by_size = created(openrouter_simulator, size="1920x1080", **pro)
    by_shape = created(openrouter_simulator, resolution="1080p", aspect_ratio="16:9", **pro)

    for job in (by_size, by_shape):  # $0.50 a second at 1080p
        assert finished(openrouter_simulator, job["id"])["usage"]["cost"] == 2.0
    clash = create(openrouter_simulator, size="1920x1080", resolution="720p", **pro)
    assert_error(clash, 400, "does not match")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"prompt": None}, "'prompt' is required"),
        ({"prompt": "  "}, "non-empty string"),
        ({"model": "openai/sora-3"}, "not a video model"),
        ({"duration": 5}, "Duration 5 is not supported by openai/sora-2: 4, 8, 12"),
        ({"duration": "4"}, "'duration' must be an integer"),
        ({"duration": True}, "'duration' must be an integer"),
        ({"resolution": "1080p"}, "Resolution '1080p' is not supported"),
        ({"aspect_ratio": "1:1"}, "Aspect ratio '1:1' is not supported"),
        ({"size": "1024x1792"}, "Size '1024x1792' is not supported"),
        ({"seconds": "4"}, "Unrecognized field 'seconds'"),
        ({"seed": 1.5}, "'seed' must be an integer"),
        ({"callback_url": "http://example.com/hook"}, "must be an https URL"),
        ({"callback_url": "ftp://127.0.0.1/hook"}, "must be an https URL"),
        ({"callback_url": "https://[::1/hook"}, "is not a URL"),
    ],
)
def test_invalid_requests_are_400_in_openrouters_envelope(
    openrouter_simulator: Simulator, body: dict[str, Any], words: str
) -> None:
    assert_error(create(openrouter_simulator, **body), 400, words)


def test_only_a_json_object_is_a_request(openrouter_simulator: Simulator) -> None:
    form = call(openrouter_simulator, "POST", "/videos", data={"model": "openai/sora-2"})
    assert_error(form, 400, "must be JSON")
    broken = call(
        openrouter_simulator,
        "POST",
        "/videos",
        data=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert_error(broken, 400, "not valid JSON")
    assert_error(call(openrouter_simulator, "POST", "/videos", json=[1]), 400, "JSON object")
    assert openrouter_simulator.stats()["jobs_created"] == 0


def test_previous_job_id_continues_a_completed_job_of_the_same_model(
    openrouter_simulator: Simulator,
) -> None:
    source = created(openrouter_simulator, duration=4)
    assert_error(create(openrouter_simulator, duration=4, previous_job_id=source["id"]), 409)
    finished(openrouter_simulator, source["id"])

    other_model = create(
        openrouter_simulator, model="openai/sora-2-pro", previous_job_id=source["id"]
    )
    assert_error(other_model, 400, "same model")
    assert_error(create(openrouter_simulator, previous_job_id="job-missing"), 404, "not found")
    continued = created(openrouter_simulator, duration=8, previous_job_id=source["id"])

    done = finished(openrouter_simulator, continued["id"])
    assert done["usage"]["cost"] == 0.8  # billed for the 8 s added, not the 12 s total
    video = requests.get(done["unsigned_urls"][0], headers=AUTH, timeout=30).content
    assert mp4(video) == (1280, 720, pytest.approx(12.0, abs=0.3))


def test_a_model_without_continuation_refuses_previous_job_id(
    openrouter_simulator: Simulator,
) -> None:
    veo = {"model": "google/veo-3.1-lite", "duration": 4}
    source = finished(openrouter_simulator, created(openrouter_simulator, **veo)["id"])
    r = create(openrouter_simulator, previous_job_id=source["id"], **veo)
    assert_error(r, 400, "does not support continuing")


def test_a_failed_job_says_why_in_a_string_and_has_no_content(
    openrouter_simulator: Simulator,
) -> None:
    openrouter_simulator.configure(fail_rate=1)
    job = finished(openrouter_simulator, created(openrouter_simulator)["id"])

    assert job["status"] == "failed"
    assert isinstance(job["error"], str) and job["error"]
    assert "usage" not in job and "unsigned_urls" not in job
    r = call(openrouter_simulator, "GET", f"/videos/{job['id']}/content")
    assert_error(r, 502, "Provider returned error")


def test_an_expired_job_is_expired_and_its_content_gone(openrouter_simulator: Simulator) -> None:
    job = finished(openrouter_simulator, created(openrouter_simulator)["id"])
    openrouter_simulator.expire(job["id"])

    body = call(openrouter_simulator, "GET", f"/videos/{job['id']}").json()
    assert body["status"] == "expired" and "expired" in body["error"]
    assert "unsigned_urls" not in body
    assert_error(call(openrouter_simulator, "GET", f"/videos/{job['id']}/content"), 404)


def test_there_is_no_list_remix_delete_or_openai_api(openrouter_simulator: Simulator) -> None:
    job = created(openrouter_simulator)

    listing = call(openrouter_simulator, "GET", "/videos")
    assert_error(listing, 405)
    assert listing.headers["Allow"] == "POST"
    deleting = call(openrouter_simulator, "DELETE", f"/videos/{job['id']}")
    assert_error(deleting, 405)
    assert deleting.headers["Allow"] == "GET, HEAD"
    assert_error(call(openrouter_simulator, "POST", f"/videos/{job['id']}/remix", json={}), 404)
    assert_error(call(openrouter_simulator, "GET", "/videos/job-nope"), 404, "not found")
    openai = requests.get(f"{openrouter_simulator.root}/v1/videos", headers=AUTH, timeout=10)
    assert openai.status_code == 404


def test_bearer_auth(openrouter_simulator: Simulator) -> None:
    job = created(openrouter_simulator)
    path = f"/videos/{job['id']}"
    bare = requests.get(openrouter_simulator.base_url + path, timeout=10)
    assert_error(bare, 401, "Missing Authentication header")

    openrouter_simulator.configure(api_key="sk-or-right")
    assert_error(call(openrouter_simulator, "GET", path), 401)
    right = call(openrouter_simulator, "GET", path, headers={"Authorization": "Bearer sk-or-right"})
    assert right.status_code == 200


def test_faults_answer_in_openrouters_envelope(openrouter_simulator: Simulator) -> None:
    openrouter_simulator.script_faults("429", method="POST")
    limited = create(openrouter_simulator)
    assert_error(limited, 429, "Rate limit")
    assert limited.headers["Retry-After"] == "1"
    openrouter_simulator.script_faults("500", method="GET")
    assert_error(call(openrouter_simulator, "GET", "/videos/job-x"), 500)
    openrouter_simulator.script_faults("accept_then_drop")
    with pytest.raises(requests.ConnectionError):
        create(openrouter_simulator)
    assert openrouter_simulator.stats()["jobs_created"] == 1  # made, though never answered


# --- webhooks --------------------------------------------------------------------------------


def verified(headers: dict[str, str], body: bytes, secret: str) -> dict[str, Any]:
    """Check the delivery as the skill says a receiver must, and return its payload."""
    fields = dict(part.split("=", 1) for part in headers["x-openrouter-signature"].split(","))
    assert abs(int(fields["t"]) - time.time()) < 60
    expected = hmac.new(secret.encode(), f"{fields['t']},".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(fields["v1"], expected.hexdigest())
    return dict(json.loads(body))


def test_webhooks_are_signed_and_keyed_by_job_and_status(
    openrouter_simulator: Simulator, webhook_receiver: tuple[str, list[Delivery]]
) -> None:
    url, got = webhook_receiver
    openrouter_simulator.configure(webhook_url=f"{url}/default", webhook_secret="or-secret")
    job = created(openrouter_simulator)

    wait_until(lambda: got)
    path, headers, body = got[0]
    payload = verified(headers, body, "or-secret")
    assert path == "/default"
    assert headers["x-openrouter-idempotency-key"] == f"{job['id']}-completed"
    assert payload["type"] == "video.generation.completed"
    assert payload["created_at"].endswith("Z")
    assert payload["data"]["id"] == job["id"] and payload["data"]["status"] == "completed"
    assert payload["data"]["usage"]["cost"] == 0.4 and payload["data"]["model"] == "openai/sora-2"
    assert payload["data"]["unsigned_urls"][0].startswith(openrouter_simulator.base_url)

    openrouter_simulator.expire(job["id"])
    wait_until(lambda: len(got) == 2)
    expired = verified(got[1][1], got[1][2], "or-secret")
    assert expired["type"] == "video.generation.expired"
    assert got[1][1]["x-openrouter-idempotency-key"] == f"{job['id']}-expired"


def test_a_callback_url_overrides_the_default_and_failures_are_announced(
    openrouter_simulator: Simulator, webhook_receiver: tuple[str, list[Delivery]]
) -> None:
    url, got = webhook_receiver
    openrouter_simulator.configure(
        webhook_url=f"{url}/default", webhook_secret="or-secret", fail_rate=1
    )
    job = created(openrouter_simulator, callback_url=f"{url}/mine")

    wait_until(lambda: got)
    path, headers, body = got[0]
    assert path == "/mine"
    payload = verified(headers, body, "or-secret")
    assert payload["type"] == "video.generation.failed"
    assert isinstance(payload["data"]["error"], str)
    assert headers["x-openrouter-idempotency-key"] == f"{job['id']}-failed"
