"""Conformance tests for the Videos API simulator (`python -m simulator`), over real HTTP."""

from __future__ import annotations

import base64
import io
import json
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import pytest
import requests
from PIL import Image
from standardwebhooks import Webhook

from simulator.testing import ControlError
from tests.conftest import ROOT, Simulator, free_port, start_simulator, stop_simulator

AUTH = {"Authorization": "Bearer sk-test"}
VIDEO_FIELDS = {
    "id",
    "object",
    "model",
    "status",
    "progress",
    "created_at",
    "completed_at",
    "expires_at",
    "prompt",
    "size",
    "seconds",
    "remixed_from_video_id",
    "error",
}


# Settings the shared `simulator` fixture does not reset; restored after every test here so
# one test's padding or webhook options never leak into the next.
RESTORE = {
    "retry_after": 1,
    "pad_video_mb": 0,
    "expires_after": 3600,
    "faults": "all",
    "slow_factor": 4,
    "webhook_duplicates": False,
    "webhook_shuffle": False,
    "webhook_delay": 0,
    "api_key": None,
    "ignore_idempotency": False,
    "latency": 0,
    "duration_jitter": 0,
}


@pytest.fixture(autouse=True)
def _restore_settings(simulator_process: Simulator) -> Iterator[None]:
    yield
    simulator_process.configure(**RESTORE)


def call(
    sim: Simulator,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 15,
    **kwargs: Any,
) -> requests.Response:
    return requests.request(
        method, sim.base_url + path, headers={**AUTH, **(headers or {})}, timeout=timeout, **kwargs
    )


def create(
    sim: Simulator,
    prompt: str = "A calico cat playing the piano",
    *,
    key: str | None = None,
    **fields: str,
) -> requests.Response:
    """POST /videos as multipart/form-data, like the official SDK."""
    parts = {name: (None, value) for name, value in {"prompt": prompt, **fields}.items()}
    headers = {"Idempotency-Key": key} if key else {}
    return call(sim, "POST", "/videos", files=parts, headers=headers)


def create_ok(
    sim: Simulator, prompt: str = "A calico cat playing the piano", **fields: str
) -> dict[str, Any]:
    response = create(sim, prompt, **fields)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(
    sim: Simulator, video_id: str, statuses: set[str], timeout: float = 10
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        video = call(sim, "GET", f"/videos/{video_id}").json()
        if video["status"] in statuses:
            return video
        assert time.monotonic() < deadline, f"{video_id} stuck in {video['status']}"
        time.sleep(0.05)


def assert_error(
    response: requests.Response,
    status: int,
    param: str | None = None,
    code: str | None = None,
    type_: str = "invalid_request_error",
) -> dict:
    assert response.status_code == status, response.text
    assert re.fullmatch(r"req_[0-9a-f]{32}", response.headers["x-request-id"])
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type_
    assert error["message"]
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error


def png(
    width: int, height: int, colour: tuple[int, int, int] = (220, 20, 20), fmt: str = "PNG"
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format=fmt)
    return buffer.getvalue()


# -- Video object, defaults, validation ----------------------------------------------------


def test_create_returns_full_video_with_defaults(simulator: Simulator) -> None:
    before = int(time.time())
    response = create(simulator, "A calico cat playing the piano")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"req_[0-9a-f]{32}", response.headers["x-request-id"])
    video = response.json()
    assert set(video) == VIDEO_FIELDS  # all thirteen, nulls included
    assert re.fullmatch(r"video_[0-9a-f]{32}", video["id"])
    assert video["object"] == "video"
    assert (video["model"], video["seconds"], video["size"]) == ("sora-2", "4", "720x1280")
    assert (video["status"], video["progress"]) == ("queued", 0)
    assert before <= video["created_at"] <= int(time.time())
    assert video["completed_at"] is None and video["expires_at"] is None
    assert video["remixed_from_video_id"] is None and video["error"] is None
    assert video["prompt"] == "A calico cat playing the piano"
    fetched = call(simulator, "GET", f"/videos/{video['id']}").json()
    assert set(fetched) == VIDEO_FIELDS
    assert fetched["id"] == video["id"]


def test_create_accepts_json_and_pro_sizes(simulator: Simulator) -> None:
    response = call(
        simulator,
        "POST",
        "/videos",
        json={
            "prompt": "Drone shot over a forest",
            "model": "sora-2-pro",
            "seconds": "8",
            "size": "1792x1024",
        },
    )
    assert response.status_code == 200, response.text
    video = response.json()
    assert (video["model"], video["seconds"], video["size"]) == ("sora-2-pro", "8", "1792x1024")
    for model in ("sora-2-2025-10-06", "sora-2-pro-2025-10-06", "sora-2-2025-12-08"):
        assert create(simulator, "x", model=model).json()["model"] == model
    assert create(simulator, "p" * 32000).status_code == 200  # the maximum is allowed


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({}, "prompt", "missing_required_parameter"),
        ({"prompt": ""}, "prompt", "string_below_min_length"),
        ({"prompt": "x" * 32001}, "prompt", "string_above_max_length"),
        ({"prompt": "x", "model": "sora-3"}, "model", "invalid_value"),
        ({"prompt": "x", "seconds": "5"}, "seconds", "invalid_value"),
        ({"prompt": "x", "seconds": 4}, "seconds", "invalid_type"),
        ({"prompt": "x", "size": "640x480"}, "size", "invalid_value"),
        ({"prompt": "x", "size": "1024x1792"}, "size", "invalid_value"),  # not for sora-2
        (
            {"prompt": "x", "model": "sora-2-2025-12-08", "size": "1792x1024"},
            "size",
            "invalid_value",
        ),
        ({"prompt": "x", "quality": "hd"}, "quality", "unknown_parameter"),
    ],
)
def test_create_validation_errors(
    simulator: Simulator, fields: dict[str, Any], param: str, code: str
) -> None:
    assert_error(call(simulator, "POST", "/videos", json=fields), 400, param, code)
    parts = {
        k: (None, v) for k, v in (fields or {"model": "sora-2"}).items() if k != "prompt" or fields
    }
    if all(isinstance(v, str) for v in fields.values()):  # the same through multipart
        assert_error(call(simulator, "POST", "/videos", files=parts), 400, param, code)
    assert simulator.stats()["jobs_created"] == 0


def test_input_reference_must_be_image_of_requested_size(simulator: Simulator) -> None:
    ok = call(
        simulator,
        "POST",
        "/videos",
        data={"prompt": "ref", "size": "720x1280"},
        files={"input_reference": ("ref.png", png(720, 1280), "image/png")},
    )
    assert ok.status_code == 200, ok.text
    wrong_size = call(
        simulator,
        "POST",
        "/videos",
        data={"prompt": "ref"},
        files={"input_reference": ("ref.png", png(1280, 720), "image/png")},
    )
    assert_error(wrong_size, 400, "input_reference")
    not_image = call(
        simulator,
        "POST",
        "/videos",
        data={"prompt": "ref"},
        files={"input_reference": ("ref.png", b"not an image", "image/png")},
    )
    assert_error(not_image, 400, "input_reference")
    gif = call(
        simulator,
        "POST",
        "/videos",
        data={"prompt": "ref"},
        files={"input_reference": ("ref.gif", png(720, 1280, fmt="GIF"), "image/gif")},
    )
    assert_error(gif, 400, "input_reference")
    for fmt in ("JPEG", "WEBP"):
        response = call(
            simulator,
            "POST",
            "/videos",
            data={"prompt": "ref"},
            files={"input_reference": ("r", png(720, 1280, fmt=fmt), "image/x")},
        )
        assert response.status_code == 200, (fmt, response.text)
    data_url = "data:image/png;base64," + base64.b64encode(png(720, 1280)).decode()
    as_json = call(
        simulator,
        "POST",
        "/videos",
        json={"prompt": "ref", "input_reference": {"image_url": data_url}},
    )
    assert as_json.status_code == 200, as_json.text
    small = "data:image/png;base64," + base64.b64encode(png(10, 10)).decode()
    assert_error(
        call(
            simulator,
            "POST",
            "/videos",
            json={"prompt": "ref", "input_reference": {"image_url": small}},
        ),
        400,
        "input_reference",
    )
    # The reference is the picture's background: the thumbnail is red where nothing is drawn.
    wait_for(simulator, ok.json()["id"], {"completed"})
    thumb = call(
        simulator, "GET", f"/videos/{ok.json()['id']}/content", params={"variant": "thumbnail"}
    )
    pixel = Image.open(io.BytesIO(thumb.content)).convert("RGB").getpixel((700, 1100))
    assert isinstance(pixel, tuple)  # RGB: one value per band
    r, g, b = pixel[:3]
    assert r > 180 and g < 80 and b < 80


def test_authentication(simulator: Simulator, tmp_path: Path) -> None:
    url = simulator.base_url + "/videos"
    assert_error(requests.get(url, timeout=5), 401, None, "invalid_api_key")
    assert_error(
        requests.get(url, headers={"Authorization": "Bearer "}, timeout=5),
        401,
        None,
        "invalid_api_key",
    )
    assert_error(requests.get(url, headers={"Authorization": "Basic abc"}, timeout=5), 401)
    assert (
        requests.get(url, headers={"Authorization": "Bearer anything"}, timeout=5).status_code
        == 200
    )
    locked = start_simulator(tmp_path / "locked", "--api-key", "sk-right", "--speed", "40")
    try:
        url = locked.base_url + "/videos"
        assert_error(
            requests.get(url, headers={"Authorization": "Bearer sk-wrong"}, timeout=5),
            401,
            None,
            "invalid_api_key",
        )
        assert_error(requests.get(url, timeout=5), 401, None, "invalid_api_key")
        assert (
            requests.get(url, headers={"Authorization": "Bearer sk-right"}, timeout=5).status_code
            == 200
        )
        assert locked.control("GET", "config")["api_key"] == "sk-right"  # /_sim needs no key
    finally:
        stop_simulator(locked)


def test_unknown_paths_and_ids_are_404(simulator: Simulator) -> None:
    assert_error(call(simulator, "GET", "/nothing-here"), 404)
    put = call(simulator, "PUT", "/videos")  # a known path: 405, saying what it has
    assert_error(put, 405, None, "method_not_allowed")
    assert put.headers["Allow"] == "GET, HEAD, POST"
    missing = "video_" + "0" * 32
    assert_error(call(simulator, "GET", f"/videos/{missing}"), 404, None, "not_found")
    assert_error(call(simulator, "DELETE", f"/videos/{missing}"), 404, None, "not_found")
    assert_error(call(simulator, "GET", f"/videos/{missing}/content"), 404, None, "not_found")
    assert_error(
        call(simulator, "POST", f"/videos/{missing}/remix", json={"prompt": "x"}),
        404,
        None,
        "not_found",
    )


# -- list ------------------------------------------------------------------------------------


def test_list_pagination(simulator: Simulator) -> None:
    seeded = [video["id"] for video in simulator.seed(5)]
    newest_first = seeded[::-1]

    def page(**params: Any) -> dict[str, Any]:
        response = call(simulator, "GET", "/videos", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    first = page(limit=2)
    assert first["object"] == "list"
    assert [v["id"] for v in first["data"]] == newest_first[:2]  # default order: desc
    assert (first["first_id"], first["last_id"]) == (newest_first[0], newest_first[1])
    assert first["has_more"] is True
    assert all(set(v) == VIDEO_FIELDS for v in first["data"])
    second = page(limit=2, after=first["last_id"])
    assert [v["id"] for v in second["data"]] == newest_first[2:4]
    assert second["has_more"] is True
    last = page(limit=2, after=second["last_id"])
    assert [v["id"] for v in last["data"]] == newest_first[4:]
    assert last["has_more"] is False
    empty = page(after=newest_first[-1])
    assert empty == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }
    ascending = page(order="asc", limit=3)
    assert [v["id"] for v in ascending["data"]] == seeded[:3]
    assert [v["id"] for v in page(order="asc", after=seeded[2])["data"]] == seeded[3:]
    assert page()["has_more"] is False and len(page()["data"]) == 5


def test_list_default_limit_is_20(simulator: Simulator) -> None:
    simulator.seed(21)
    body = call(simulator, "GET", "/videos").json()
    assert len(body["data"]) == 20 and body["has_more"] is True
    assert len(call(simulator, "GET", "/videos", params={"limit": 100}).json()["data"]) == 21


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": -1}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"after": "video_unknown"}, "after"),
    ],
)
def test_list_validation(simulator: Simulator, params: dict[str, Any], param: str) -> None:
    assert_error(call(simulator, "GET", "/videos", params=params), 400, param)


def test_list_cursor_survives_deleting_it(simulator: Simulator) -> None:
    ids = [v["id"] for v in simulator.seed(3)]
    assert call(simulator, "DELETE", f"/videos/{ids[1]}").status_code == 200
    body = call(simulator, "GET", "/videos", params={"after": ids[1], "order": "asc"}).json()
    assert [v["id"] for v in body["data"]] == [ids[2]]


# -- lifecycle -------------------------------------------------------------------------------


def test_latency_holds_every_api_answer_and_the_hint_is_a_round_figure(
    simulator: Simulator,
) -> None:
    simulator.configure(speed=1, latency=0.3)
    started = time.monotonic()
    video = create_ok(simulator, "A far-away provider")
    assert time.monotonic() - started >= 0.3  # the create too, not only the reads
    started = time.monotonic()
    response = call(simulator, "GET", f"/videos/{video['id']}")
    assert time.monotonic() - started >= 0.3
    assert response.headers["openai-poll-after-ms"] == "1000"  # a 20 s render: 1 s


def test_render_times_vary_within_the_jitter(simulator: Simulator) -> None:
    simulator.configure(speed=1, duration_jitter=0.2)
    ids = [create_ok(simulator, f"jitter {n}")["id"] for n in range(8)]
    times = simulator.completion_times()
    created = {
        v["id"]: v["created_at"] for v in call(simulator, "GET", "/videos?limit=20").json()["data"]
    }
    durations = [times[i] - created[i] for i in ids]
    # 20 s ±20 %, give or take created_at's whole second; not all the same length.
    assert all(15 <= d <= 25 for d in durations) and len({round(d, 2) for d in durations}) > 1
    with pytest.raises(ControlError) as refused:
        simulator.configure(duration_jitter=1.5)
    assert refused.value.status == 400


def test_lifecycle_queued_progress_completed(simulator: Simulator) -> None:
    simulator.configure(speed=8)  # 4 s clip -> 2.5 s render: slow enough to watch
    video = create_ok(simulator, "Watch me render")
    assert video["status"] == "queued"
    seen: list[tuple[str, int]] = []
    poll_after = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        response = call(simulator, "GET", f"/videos/{video['id']}")
        body = response.json()
        seen.append((body["status"], body["progress"]))
        if body["status"] in ("queued", "in_progress"):
            poll_after.add(response.headers.get("openai-poll-after-ms"))
            assert body["completed_at"] is None and body["expires_at"] is None
        if body["status"] == "completed":
            break
        time.sleep(0.04)
    statuses = [status for status, _ in seen]
    assert statuses[-1] == "completed"
    order = {"queued": 0, "in_progress": 1, "completed": 2}
    assert [order[s] for s in statuses] == sorted(order[s] for s in statuses)
    assert "queued" in statuses
    progress = [p for status, p in seen if status == "in_progress"]
    assert len(set(progress)) >= 3, seen
    assert progress == sorted(progress) and 0 <= progress[0] and progress[-1] <= 99
    assert None not in poll_after
    done = seen[-1]
    assert done == ("completed", 100)
    final = call(simulator, "GET", f"/videos/{video['id']}").json()
    assert final["completed_at"] >= final["created_at"]
    assert 1.5 <= final["completed_at"] - final["created_at"] + 1 <= 4.5
    assert abs(final["expires_at"] - (final["completed_at"] + 3600 / 8)) <= 1
    assert final["error"] is None


def test_speed_change_affects_only_new_jobs(simulator: Simulator) -> None:
    simulator.configure(speed=4)  # 5 s
    slow = create_ok(simulator)
    simulator.configure(speed=400)
    fast = create_ok(simulator)
    wait_for(simulator, fast["id"], {"completed"}, timeout=3)
    assert call(simulator, "GET", f"/videos/{slow['id']}").json()["status"] != "completed"


def test_failed_jobs(simulator: Simulator) -> None:
    simulator.configure(fail_rate=1)
    video = create_ok(simulator)
    failed = wait_for(simulator, video["id"], {"failed", "completed"})
    assert failed["status"] == "failed"
    assert failed["error"]["code"] in {
        "video_generation_failed",
        "moderation_blocked",
        "internal_error",
    }
    assert isinstance(failed["error"]["message"], str) and failed["error"]["message"]
    assert failed["completed_at"] is not None and failed["expires_at"] is None
    assert failed["progress"] < 100
    assert_error(call(simulator, "GET", f"/videos/{video['id']}/content"), 400)
    assert_error(call(simulator, "POST", f"/videos/{video['id']}/remix", json={"prompt": "x"}), 400)
    assert call(simulator, "DELETE", f"/videos/{video['id']}").status_code == 200


def test_slow_jobs_take_longer(simulator: Simulator) -> None:
    simulator.configure(slow_rate=1, slow_factor=6)  # 0.5 s -> 3 s
    slow = create_ok(simulator)
    simulator.configure(slow_rate=0)
    normal = create_ok(simulator)
    wait_for(simulator, normal["id"], {"completed"}, timeout=3)
    assert call(simulator, "GET", f"/videos/{slow['id']}").json()["status"] != "completed"


# -- remix and delete ------------------------------------------------------------------------


def test_remix_inherits_source_and_requires_completed(simulator: Simulator) -> None:
    source = create_ok(simulator, "Original", model="sora-2-pro", seconds="8", size="1024x1792")
    early = call(simulator, "POST", f"/videos/{source['id']}/remix", json={"prompt": "Again"})
    assert_error(early, 400)
    wait_for(simulator, source["id"], {"completed"})
    response = call(
        simulator, "POST", f"/videos/{source['id']}/remix", json={"prompt": "Same scene at night"}
    )
    assert response.status_code == 200, response.text
    remix = response.json()
    assert set(remix) == VIDEO_FIELDS
    assert remix["id"] != source["id"]
    assert remix["remixed_from_video_id"] == source["id"]
    assert (remix["model"], remix["seconds"], remix["size"]) == ("sora-2-pro", "8", "1024x1792")
    assert (remix["status"], remix["prompt"]) == ("queued", "Same scene at night")
    multipart = call(
        simulator, "POST", f"/videos/{source['id']}/remix", files={"prompt": (None, "In winter")}
    )
    assert multipart.status_code == 200 and multipart.json()["prompt"] == "In winter"
    assert_error(call(simulator, "POST", f"/videos/{source['id']}/remix", json={}), 400, "prompt")
    assert_error(
        call(simulator, "POST", f"/videos/{source['id']}/remix", json={"prompt": "x" * 32001}),
        400,
        "prompt",
    )
    assert simulator.stats()["jobs_created"] == 3


def test_delete_rules(simulator: Simulator) -> None:
    simulator.configure(speed=2)
    running = create_ok(simulator)
    assert_error(call(simulator, "DELETE", f"/videos/{running['id']}"), 400)
    done = simulator.seed(1)[0]
    response = call(simulator, "DELETE", f"/videos/{done['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": done["id"], "object": "video.deleted", "deleted": True}
    assert_error(call(simulator, "GET", f"/videos/{done['id']}"), 404)
    assert_error(call(simulator, "GET", f"/videos/{done['id']}/content"), 404)
    assert_error(call(simulator, "DELETE", f"/videos/{done['id']}"), 404)
    ids = [v["id"] for v in call(simulator, "GET", "/videos").json()["data"]]
    assert ids == [running["id"]]


# -- content ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "size", "seconds", "fps"),
    [("sora-2", "720x1280", "4", 24), ("sora-2-pro", "1792x1024", "8", 6)],
)
def test_content_variants(
    simulator: Simulator, model: str, size: str, seconds: str, fps: int
) -> None:
    simulator.configure(fps=fps)  # 24 is the default; the suite runs at 6 to save CPU
    video = create_ok(simulator, "A red fox in the snow", model=model, size=size, seconds=seconds)
    wait_for(simulator, video["id"], {"completed"})
    width, height = (int(n) for n in size.split("x"))
    response = call(simulator, "GET", f"/videos/{video['id']}/content")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.content[4:8] == b"ftyp"
    with av.open(io.BytesIO(response.content), mode="r") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (width, height)
        assert abs((container.duration or 0) / 1_000_000 - int(seconds)) <= 0.2
        assert [s.codec_context.name for s in container.streams.audio] == ["aac"]
        frames = sum(1 for _ in container.decode(video=0))
        assert float(stream.average_rate) == fps
        assert abs(frames / float(stream.average_rate) - int(seconds)) <= 0.2
    thumb = call(
        simulator, "GET", f"/videos/{video['id']}/content", params={"variant": "thumbnail"}
    )
    assert thumb.headers["Content-Type"] == "image/webp"
    image = Image.open(io.BytesIO(thumb.content))
    assert (image.format, image.size) == ("WEBP", (width, height))
    sprites = call(
        simulator, "GET", f"/videos/{video['id']}/content", params={"variant": "spritesheet"}
    )
    assert sprites.headers["Content-Type"] == "image/jpeg"
    sheet = Image.open(io.BytesIO(sprites.content))
    assert sheet.format == "JPEG" and sheet.size[0] == width  # 4 tiles of 1/4 width
    # Cached: the second download is byte-identical.
    assert call(simulator, "GET", f"/videos/{video['id']}/content").content == response.content


def test_content_rules_and_expiry(simulator: Simulator) -> None:
    simulator.configure(speed=2)
    running = create_ok(simulator)
    assert_error(call(simulator, "GET", f"/videos/{running['id']}/content"), 400)
    done = simulator.seed(1)[0]
    assert done["status"] == "completed" and done["expires_at"] > time.time()
    assert_error(
        call(simulator, "GET", f"/videos/{done['id']}/content", params={"variant": "poster"}),
        400,
        "variant",
    )
    assert (
        call(
            simulator, "GET", f"/videos/{done['id']}/content", params={"variant": "thumbnail"}
        ).status_code
        == 200
    )
    expired = simulator.expire(done["id"])
    assert expired["expires_at"] <= time.time()
    for variant in ("video", "thumbnail", "spritesheet"):
        assert_error(
            call(simulator, "GET", f"/videos/{done['id']}/content", params={"variant": variant}),
            410,
        )
    assert call(simulator, "GET", f"/videos/{done['id']}").json()["status"] == "completed"


def test_content_range_and_padding(simulator: Simulator) -> None:
    simulator.configure(pad_video_mb=1)
    video = simulator.seed(1)[0]
    full = call(simulator, "GET", f"/videos/{video['id']}/content")
    assert full.status_code == 200
    size = len(full.content)
    pad = 1024 * 1024
    # The free box sits after the real file: 4-byte size, "free", zeros.
    assert full.content[size - pad : size - pad + 8] == pad.to_bytes(4, "big") + b"free"
    assert full.content[-1000:] == bytes(1000)
    with av.open(io.BytesIO(full.content)) as container:  # still a valid MP4
        assert container.streams.video[0].codec_context.name == "h264"
    part = call(
        simulator, "GET", f"/videos/{video['id']}/content", headers={"Range": "bytes=100-1099"}
    )
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-1099/{size}"
    assert part.content == full.content[100:1100]
    tail = call(
        simulator,
        "GET",
        f"/videos/{video['id']}/content",
        headers={"Range": f"bytes={size - pad - 4}-"},
    )
    assert tail.content == full.content[size - pad - 4 :]
    bad = call(
        simulator, "GET", f"/videos/{video['id']}/content", headers={"Range": f"bytes={size}-"}
    )
    assert bad.status_code == 416


def test_concurrent_first_downloads_share_one_generation(simulator: Simulator) -> None:
    video = simulator.seed(1)[0]
    with ThreadPoolExecutor(6) as pool:
        bodies = list(
            pool.map(
                lambda _: call(simulator, "GET", f"/videos/{video['id']}/content").content, range(6)
            )
        )
    assert len(set(bodies)) == 1 and bodies[0][4:8] == b"ftyp"
    assert simulator.stats()["per_video"][video["id"]]["content"] == 6


# -- idempotency -----------------------------------------------------------------------------


def test_idempotency_key_returns_the_same_job(simulator: Simulator) -> None:
    first = create(simulator, "Once", key="key-1")
    second = create(simulator, "Once", key="key-1")
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert second.headers.get("idempotent-replayed") == "true"
    assert simulator.stats()["jobs_created"] == 1
    other = create(simulator, "Once", key="key-2")
    assert other.json()["id"] != first.json()["id"]
    assert simulator.stats()["jobs_created"] == 2
    # Concurrent retries with one key still make one job.
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: create(simulator, "Race", key="key-3").json()["id"], range(8)))
    assert len(ids) == 1
    assert simulator.stats()["jobs_created"] == 3
    listed = call(simulator, "GET", "/videos").json()["data"]
    assert len(listed) == 3


def test_idempotency_on_remix(simulator: Simulator) -> None:
    source = simulator.seed(1)[0]
    path = f"/videos/{source['id']}/remix"
    one = call(simulator, "POST", path, json={"prompt": "r"}, headers={"Idempotency-Key": "k"})
    two = call(simulator, "POST", path, json={"prompt": "r"}, headers={"Idempotency-Key": "k"})
    assert one.json()["id"] == two.json()["id"]
    assert simulator.stats()["jobs_created"] == 1


# -- faults ----------------------------------------------------------------------------------


def test_fault_429_with_retry_after(simulator: Simulator) -> None:
    simulator.configure(retry_after=2)
    simulator.script_faults("429", count=2)
    for _ in range(2):
        response = call(simulator, "GET", "/videos")
        assert_error(response, 429, None, "rate_limit_exceeded", "rate_limit_exceeded")
        assert response.headers["Retry-After"] == "2"
        assert response.headers["retry-after-ms"] == "2000"
    assert call(simulator, "GET", "/videos").status_code == 200  # both uses consumed
    assert simulator.stats()["faults_injected"] == 2


@pytest.mark.parametrize("kind", ["500", "503"])
def test_fault_5xx_envelope(simulator: Simulator, kind: str) -> None:
    simulator.script_faults(kind)
    assert_error(call(simulator, "GET", "/videos"), int(kind), type_="server_error")


def test_fault_502_is_html(simulator: Simulator) -> None:
    simulator.script_faults("502")
    response = call(simulator, "GET", "/videos")
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"502 Bad Gateway" in response.content


def test_fault_drop_closes_connection_and_session_recovers(simulator: Simulator) -> None:
    with requests.Session() as session:
        session.headers.update(AUTH)
        assert session.get(simulator.base_url + "/videos", timeout=5).status_code == 200
        simulator.script_faults("drop")  # hits the pooled keep-alive connection
        with pytest.raises(requests.ConnectionError):
            session.get(simulator.base_url + "/videos", timeout=5)
        assert session.get(simulator.base_url + "/videos", timeout=5).status_code == 200


def test_fault_timeout(simulator: Simulator) -> None:
    simulator.configure(hang_seconds=1)
    simulator.script_faults("timeout")
    with pytest.raises(requests.ReadTimeout):
        call(simulator, "GET", "/videos", timeout=0.3)
    assert call(simulator, "GET", "/videos", timeout=5).status_code == 200


def test_fault_malformed_json(simulator: Simulator) -> None:
    simulator.script_faults("malformed")
    response = call(simulator, "GET", "/videos")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_fault_accept_then_drop_creates_the_job(simulator: Simulator) -> None:
    simulator.script_faults("accept_then_drop", method="POST", path="/v1/videos")
    with pytest.raises(requests.ConnectionError):
        create(simulator, "Outcome unknown", key="retry-me")
    listed = call(simulator, "GET", "/videos").json()["data"]
    assert [v["prompt"] for v in listed] == ["Outcome unknown"]
    assert simulator.stats()["jobs_created"] == 1
    retried = create(simulator, "Outcome unknown", key="retry-me")  # the key was stored
    assert retried.json()["id"] == listed[0]["id"]
    assert simulator.stats()["jobs_created"] == 1


def test_fault_accept_then_timeout_creates_the_job(simulator: Simulator) -> None:
    simulator.configure(hang_seconds=1)
    simulator.script_faults("accept_then_timeout")
    call(simulator, "GET", "/videos")  # a GET does not consume a POST-only fault
    with pytest.raises(requests.ReadTimeout):
        call(simulator, "POST", "/videos", json={"prompt": "stalled"}, timeout=0.3)
    assert simulator.stats()["jobs_created"] == 1


def test_scripted_faults_match_method_and_path(simulator: Simulator) -> None:
    video = simulator.seed(1)[0]
    simulator.script_faults("503", method="GET", path="/content")
    assert create(simulator).status_code == 200
    assert call(simulator, "GET", f"/videos/{video['id']}").status_code == 200
    assert call(simulator, "GET", f"/videos/{video['id']}/content").status_code == 503
    assert call(simulator, "GET", f"/videos/{video['id']}/content").status_code == 200


def test_random_faults_use_rate_and_kinds(simulator: Simulator) -> None:
    simulator.configure(fault_rate=1, faults=["503"])
    for _ in range(3):
        assert call(simulator, "GET", "/videos").status_code == 503
    assert simulator.stats()["faults_injected"] == 3  # /_sim is never faulted
    simulator.configure(faults="accept_then_drop")  # POST-only: GETs have nothing to draw
    assert call(simulator, "GET", "/videos").status_code == 200
    config = simulator.configure(fault_rate=0, faults="all")
    assert config["faults"] == [
        "429",
        "500",
        "502",
        "503",
        "timeout",
        "drop",
        "malformed",
        "accept_then_drop",
        "accept_then_timeout",
        "create_then_500",
        "truncate",
    ]


def test_fault_create_then_500_creates_the_job(simulator: Simulator) -> None:
    simulator.script_faults("create_then_500")
    assert call(simulator, "GET", "/videos").status_code == 200  # waits for a create
    response = create(simulator, "Made, then denied", key="k-500")
    assert_error(response, 500, type_="server_error")
    assert simulator.stats()["jobs_created"] == 1
    listed = call(simulator, "GET", "/videos").json()["data"]
    assert [v["prompt"] for v in listed] == ["Made, then denied"]
    assert create(simulator, "Made, then denied", key="k-500").json()["id"] == listed[0]["id"]


def raw_get(sim: Simulator, path: str) -> tuple[bytes, bytes]:
    """GET over a bare socket: (status line and headers, every body byte until the close)."""
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as conn:
        conn.sendall(
            f"GET /v1{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {AUTH['Authorization']}\r\n\r\n".encode()
        )
        data = b""
        while chunk := conn.recv(65536):  # ends at a clean close (b""), never a reset
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def test_fault_truncate_cuts_a_download_without_content_length(simulator: Simulator) -> None:
    video = simulator.seed(1)[0]
    full = call(simulator, "GET", f"/videos/{video['id']}/content").content
    simulator.script_faults("truncate")
    assert call(simulator, "GET", f"/videos/{video['id']}").status_code == 200  # not content
    assert create(simulator).status_code == 200  # nor a create
    head, body = raw_get(simulator, f"/videos/{video['id']}/content")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"content-length" not in head.lower() and b"connection: close" in head.lower()
    assert 0 < len(body) < len(full) and full.startswith(body)
    assert simulator.stats()["faults"] == {"truncate": 1}
    with av.open(io.BytesIO(full), mode="r") as container:  # the whole file still decodes
        assert next(container.decode(video=0)) is not None
    assert call(simulator, "GET", f"/videos/{video['id']}/content").content == full


def test_random_truncate_only_hits_content(simulator: Simulator) -> None:
    video = simulator.seed(1)[0]
    simulator.configure(fault_rate=1, faults="truncate")
    assert call(simulator, "GET", f"/videos/{video['id']}").status_code == 200
    assert create(simulator).status_code == 200
    _, body = raw_get(simulator, f"/videos/{video['id']}/content?variant=thumbnail")
    simulator.configure(fault_rate=0)
    thumb = call(simulator, "GET", f"/videos/{video['id']}/content?variant=thumbnail")
    assert 0 < len(body) < len(thumb.content)


@pytest.mark.parametrize("how", ["option", "config"])
def test_ignore_idempotency_creates_a_job_per_post(
    simulator: Simulator, tmp_path: Path, how: str
) -> None:
    if how == "option":
        sim = start_simulator(tmp_path / "sim", "--ignore-idempotency")
    else:
        sim = simulator
        assert sim.configure(ignore_idempotency=True)["ignore_idempotency"] is True
    try:
        first = create(sim, "Twice", key="same-key")
        second = create(sim, "Twice", key="same-key")
        assert first.json()["id"] != second.json()["id"]
        assert "idempotent-replayed" not in second.headers
        source = sim.seed(1)[0]
        path = f"/videos/{source['id']}/remix"
        remixes = {
            call(sim, "POST", path, json={"prompt": "r"}, headers={"Idempotency-Key": "k"}).json()[
                "id"
            ]
            for _ in range(2)
        }
        assert len(remixes) == 2
        assert sim.stats()["jobs_created"] == 4
        # Switched back at run time, keys count again (new keys; the ignored ones were not kept).
        sim.configure(ignore_idempotency=False)
        again = [create(sim, "Once", key="new-key").json()["id"] for _ in range(2)]
        assert again[0] == again[1]
    finally:
        if sim is not simulator:
            stop_simulator(sim)


# -- control endpoints and stats -------------------------------------------------------------


def test_config_and_control_validation(simulator: Simulator) -> None:
    config = simulator.control("GET", "config")
    for name in (
        "speed",
        "api_key",
        "expires_after",
        "fault_rate",
        "faults",
        "retry_after",
        "hang_seconds",
        "fail_rate",
        "slow_rate",
        "slow_factor",
        "webhook_url",
        "webhook_secret",
        "webhook_duplicates",
        "webhook_shuffle",
        "webhook_delay",
        "pad_video_mb",
        "fps",
        "samples",
    ):
        assert name in config
    assert config["speed"] == 40 and config["hang_seconds"] == 3
    patched = simulator.configure(retry_after=5)
    assert patched["retry_after"] == 5 and set(patched) == set(config)
    root = simulator.root + "/_sim/"
    assert requests.post(root + "config", json={"nope": 1}, timeout=5).status_code == 400
    assert requests.post(root + "config", json={"fault_rate": 2}, timeout=5).status_code == 400
    assert requests.post(root + "config", json={"fps": 0}, timeout=5).status_code == 400
    assert requests.post(root + "config", json={"faults": ["boom"]}, timeout=5).status_code == 400
    assert requests.post(root + "faults/next", json={"fault": "boom"}, timeout=5).status_code == 400
    assert requests.post(root + "videos/video_x/expire", timeout=5).status_code == 404
    assert requests.get(root + "nothing", timeout=5).status_code == 404


def test_seed_returns_completed_videos(simulator: Simulator) -> None:
    videos = simulator.seed(3)
    assert len(videos) == 3 and len({v["prompt"] for v in videos}) == 3  # varied
    for video in videos:
        assert set(video) == VIDEO_FIELDS
        assert (video["status"], video["progress"]) == ("completed", 100)
        assert video["completed_at"] is not None
        assert video["expires_at"] == pytest.approx(video["completed_at"] + 3600 / 40, abs=1)
        assert video["size"] in {"720x1280", "1280x720"} or "pro" in video["model"]
    assert simulator.stats()["jobs_created"] == 0  # seeds are not API creations


def test_seed_draws_settings_at_random_unless_pinned(simulator: Simulator) -> None:
    varied = simulator.seed(12, varied=True)
    assert len({(v["model"], v["size"], v["seconds"]) for v in varied}) > 1
    pinned = simulator.seed(3, varied=True, model="sora-2-pro", size="1024x1792", seconds="8")
    assert {(v["model"], v["size"], v["seconds"]) for v in pinned} == {
        ("sora-2-pro", "1024x1792", "8")
    }
    root = simulator.root + "/_sim/seed"
    for bad in (
        {"model": "sora-9"},
        {"model": "sora-2", "size": "1024x1792"},  # a pro-only size
        {"size": "720x1280"},  # a size without its model
        {"seconds": "5"},
    ):
        r = requests.post(root, json={"count": 1, **bad}, timeout=5)
        assert r.status_code == 400, bad


def test_stats_count_requests_by_route_and_video(simulator: Simulator) -> None:
    seeded = simulator.seed(1)[0]["id"]
    create_ok(simulator)
    call(simulator, "GET", f"/videos/{seeded}")
    call(simulator, "GET", f"/videos/{seeded}")
    call(simulator, "GET", f"/videos/{seeded}/content", params={"variant": "thumbnail"})
    call(simulator, "GET", "/videos")
    call(simulator, "POST", f"/videos/{seeded}/remix", json={"prompt": "again"})
    call(simulator, "DELETE", f"/videos/{seeded}")
    call(simulator, "GET", "/nowhere")
    stats = simulator.stats()
    assert stats["requests"] == {
        "POST /v1/videos": 1,
        "GET /v1/videos/{id}": 2,
        "GET /v1/videos/{id}/content": 1,
        "GET /v1/videos": 1,
        "POST /v1/videos/{id}/remix": 1,
        "DELETE /v1/videos/{id}": 1,
        "GET (unknown /v1 path)": 1,
    }
    assert stats["per_video"][seeded] == {"retrieve": 2, "content": 1, "remix": 1, "delete": 1}
    assert stats["jobs_created"] == 2
    simulator.reset()
    cleared = simulator.stats()
    assert cleared["requests"] == {} and cleared["jobs_created"] == 0
    assert call(simulator, "GET", "/videos").json()["data"] == []


def test_many_concurrent_clients(simulator: Simulator) -> None:
    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(lambda i: create(simulator, f"job {i}"), range(64)))
    assert all(r.status_code == 200 for r in responses)
    assert len({r.json()["id"] for r in responses}) == 64
    assert simulator.stats()["jobs_created"] == 64
    with requests.Session() as session:  # keep-alive: one connection, many requests
        session.headers.update(AUTH)
        for _ in range(30):
            assert (
                session.get(
                    simulator.base_url + "/videos", params={"limit": 1}, timeout=5
                ).status_code
                == 200
            )


# -- persistence -----------------------------------------------------------------------------


def test_restart_keeps_jobs_keys_and_clock(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sim = start_simulator(data, "--speed", "10", "--samples", "2")
    try:
        assert len(call(sim, "GET", "/videos").json()["data"]) == 2
        running = create(sim, "survive a restart", key="persist-key").json()
        seeded = sim.seed(1)[0]
        content = call(
            sim, "GET", f"/videos/{seeded['id']}/content", params={"variant": "thumbnail"}
        ).content
    finally:
        stop_simulator(sim)
    sim = start_simulator(data, "--speed", "10", "--samples", "2")
    try:
        listed = call(sim, "GET", "/videos").json()["data"]
        assert len(listed) == 4  # samples are not added again to a non-empty store
        again = create(sim, "survive a restart", key="persist-key").json()
        assert again["id"] == running["id"] and again["created_at"] == running["created_at"]
        assert sim.stats()["jobs_created"] == 0
        done = wait_for(sim, running["id"], {"completed"}, timeout=5)  # the clock went on
        assert done["completed_at"] - done["created_at"] <= 4
        assert (
            call(
                sim, "GET", f"/videos/{seeded['id']}/content", params={"variant": "thumbnail"}
            ).content
            == content
        )
    finally:
        stop_simulator(sim)


def test_help_documents_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulator", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    for option in (
        "--host",
        "--port",
        "--speed",
        "--api-key",
        "--data-dir",
        "--expires-after",
        "--samples",
        "--fault-rate",
        "--faults",
        "--retry-after",
        "--hang-seconds",
        "--fail-rate",
        "--slow-rate",
        "--slow-factor",
        "--webhook-url",
        "--webhook-secret",
        "--webhook-duplicates",
        "--webhook-shuffle",
        "--webhook-delay",
        "--pad-video-mb",
        "--fps",
        "--ignore-idempotency",
        "--quirks",
        "--accent",
        "POST /videos/edits",
        "POST /videos/extensions",
        "GET /models",
        "content_400_until_done",
        "new-api = task_ids",
        "GET /files/{id}.mp4",
        "accept_then_timeout",
        "create_then_500",
        "truncate",
        "/_sim/seed",
    ):
        assert option in result.stdout


def test_start_prints_url_and_temp_dir_is_removed() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/v1" in line
        data_dir = Path(re.search(r"data dir (\S+),", line)[1])  # type: ignore[index]
        assert (data_dir / "simulator.sqlite3").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert not data_dir.exists()


# -- webhooks --------------------------------------------------------------------------------


class Receiver:
    """A tiny webhook endpoint that records deliveries; `fail_first` answers 500 at first."""

    def __init__(self, fail_first: int = 0) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handle(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.deliveries.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    failing = len(receiver.deliveries) <= receiver.fail_first
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 8) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.deliveries) >= count:
                    return list(self.deliveries)
            time.sleep(0.05)
        raise AssertionError(f"only {len(self.deliveries)} of {count} deliveries")


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(fail_first: int = 0) -> Receiver:
        made.append(Receiver(fail_first))
        return made[-1]

    yield make
    for item in made:
        item.server.shutdown()
        item.server.server_close()


SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def test_webhook_signed_completed_and_failed(
    simulator: Simulator, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver()
    simulator.configure(webhook_url=hook.url, webhook_secret=SECRET)
    ok = create_ok(simulator)
    simulator.configure(fail_rate=1)
    bad = create_ok(simulator)
    deliveries = hook.wait(2)
    time.sleep(0.3)
    assert len(hook.deliveries) == 2  # exactly one event per job
    events = {}
    for headers, body in deliveries:
        event = Webhook(SECRET).verify(body, headers)  # raises if the signature is wrong
        assert headers["content-type"] == "application/json"
        assert re.fullmatch(r"evt_[0-9a-f]{32}", event["id"])
        assert event["object"] == "event" and isinstance(event["created_at"], int)
        events[event["data"]["id"]] = event["type"]
        with pytest.raises(Exception, match="signature"):
            Webhook("whsec_" + base64.b64encode(b"another secret!!").decode()).verify(body, headers)
    assert events == {ok["id"]: "video.completed", bad["id"]: "video.failed"}
    # The job is finished by the time its event arrives.
    assert call(simulator, "GET", f"/videos/{ok['id']}").json()["status"] == "completed"


def test_webhook_duplicates_share_webhook_id(
    simulator: Simulator, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver()
    simulator.configure(webhook_url=hook.url, webhook_secret=SECRET, webhook_duplicates=True)
    create_ok(simulator)
    deliveries = hook.wait(2)
    ids = {headers["webhook-id"] for headers, _ in deliveries}
    bodies = {body for _, body in deliveries}
    assert len(ids) == 1 and len(bodies) == 1
    for headers, body in deliveries:
        Webhook(SECRET).verify(body, headers)


def test_webhook_retries_failed_deliveries(
    simulator: Simulator, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver(fail_first=1)
    simulator.configure(webhook_url=hook.url, webhook_secret=SECRET)
    create_ok(simulator)
    first, second = hook.wait(2)
    assert first[0]["webhook-id"] == second[0]["webhook-id"]
    assert json.loads(first[1]) == json.loads(second[1])
    webhooks = simulator.stats()["webhooks"]
    assert webhooks["failed_attempts"] == 1 and webhooks["delivered"] == 1


def test_webhook_delay_and_shuffle(simulator: Simulator, receiver: Callable[..., Receiver]) -> None:
    hook = receiver()
    simulator.configure(
        webhook_url=hook.url, webhook_secret=SECRET, webhook_delay=0.8, webhook_shuffle=True
    )
    started = time.monotonic()
    ids = {create_ok(simulator, f"job {i}")["id"] for i in range(4)}
    deliveries = hook.wait(4)
    assert time.monotonic() - started >= 0.8 + 0.5  # render time + delay
    assert {json.loads(body)["data"]["id"] for _, body in deliveries} == ids
