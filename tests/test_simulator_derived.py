"""The simulator's edits, extensions, model list and HTTP conformance, over real HTTP."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from typing import Any

import av
import pytest
import requests

from tests.conftest import Simulator
from tests.test_simulator import VIDEO_FIELDS, assert_error, call, create_ok, png, wait_for


@pytest.fixture(autouse=True)
def _no_key(simulator_process: Simulator) -> Iterator[None]:
    yield
    simulator_process.configure(api_key=None)


def derive(sim: Simulator, kind: str, key: str | None = None, **body: Any) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return call(sim, "POST", f"/videos/{kind}", json=body, headers=headers)


def watch(sim: Simulator, video_id: str) -> list[str]:
    """The statuses a job goes through, polled until it completes."""
    seen: list[str] = []
    deadline = time.monotonic() + 15
    while not seen or seen[-1] != "completed":
        assert time.monotonic() < deadline, seen
        status = call(sim, "GET", f"/videos/{video_id}").json()["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        time.sleep(0.02)
    return seen


def mp4_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base)


# -- edits -----------------------------------------------------------------------------------


def test_edit_makes_a_tracked_job_from_a_completed_video(simulator: Simulator) -> None:
    source = simulator.seed(1, model="sora-2-pro", size="1792x1024", seconds="8")[0]
    simulator.configure(speed=8)  # slow enough to see every state
    response = derive(simulator, "edits", prompt="Make it snow", video={"id": source["id"]})
    assert response.status_code == 200, response.text
    edit = response.json()
    assert set(edit) == VIDEO_FIELDS
    assert edit["id"] != source["id"] and edit["remixed_from_video_id"] == source["id"]
    assert (edit["model"], edit["size"], edit["seconds"]) == ("sora-2-pro", "1792x1024", "8")
    assert (edit["status"], edit["progress"], edit["prompt"]) == ("queued", 0, "Make it snow")
    assert watch(simulator, edit["id"]) == ["queued", "in_progress", "completed"]
    multipart = call(
        simulator,
        "POST",
        "/videos/edits",
        files={"prompt": (None, "In autumn"), "video[id]": (None, source["id"])},
    )
    assert multipart.status_code == 200, multipart.text
    assert multipart.json()["remixed_from_video_id"] == source["id"]
    assert simulator.stats()["jobs_created"] == 2


def test_edit_refuses_bad_input_and_unfinished_sources(simulator: Simulator) -> None:
    done = simulator.seed(1)[0]
    ref = {"id": done["id"]}
    assert_error(derive(simulator, "edits", video=ref), 400, "prompt")
    assert_error(derive(simulator, "edits", prompt="", video=ref), 400, "prompt")
    assert_error(derive(simulator, "edits", prompt="x" * 32001, video=ref), 400, "prompt")
    assert derive(simulator, "edits", prompt="x" * 32000, video=ref).status_code == 200
    assert_error(derive(simulator, "edits", prompt="p"), 400, "video")
    assert_error(derive(simulator, "edits", prompt="p", video=done["id"]), 400, "video")
    assert_error(derive(simulator, "edits", prompt="p", video={"id": 3}), 400, "video")
    assert_error(derive(simulator, "edits", prompt="p", video=ref, seconds="4"), 400, "seconds")
    missing = derive(simulator, "edits", prompt="p", video={"id": "video_" + "0" * 32})
    assert_error(missing, 404, None, "not_found")
    upload = call(
        simulator,
        "POST",
        "/videos/edits",
        files={"prompt": (None, "p"), "video": ("clip.mp4", b"\0\0\0\x18ftyp", "video/mp4")},
    )
    assert_error(upload, 400, "video")
    simulator.configure(speed=2)
    running = create_ok(simulator)
    early = derive(simulator, "edits", prompt="p", video={"id": running["id"]})
    assert_error(early, 400, None, "video_not_completed")


# -- extensions ------------------------------------------------------------------------------


def test_extension_is_the_source_plus_the_new_segment(simulator: Simulator) -> None:
    source = simulator.seed(1)[0]  # 4 s
    response = derive(
        simulator, "extensions", prompt="And then", seconds="8", video={"id": source["id"]}
    )
    assert response.status_code == 200, response.text
    extension = response.json()
    assert set(extension) == VIDEO_FIELDS
    assert extension["seconds"] == "12" and extension["remixed_from_video_id"] == source["id"]
    assert (extension["model"], extension["size"]) == (source["model"], source["size"])
    assert watch(simulator, extension["id"])[-1] == "completed"
    content = call(simulator, "GET", f"/videos/{extension['id']}/content")
    assert content.status_code == 200
    assert mp4_seconds(content.content) == pytest.approx(12, abs=0.5)
    again = derive(
        simulator, "extensions", prompt="More", seconds="4", video={"id": extension["id"]}
    )
    assert again.json()["seconds"] == "16"


def test_extension_lifecycle_and_validation(simulator: Simulator) -> None:
    source = simulator.seed(1)[0]
    ref = {"id": source["id"]}
    assert_error(derive(simulator, "extensions", prompt="p", video=ref), 400, "seconds")
    for wrong in ("5", "", "24"):
        bad = derive(simulator, "extensions", prompt="p", seconds=wrong, video=ref)
        assert_error(bad, 400, "seconds", "invalid_value")
    as_number = derive(simulator, "extensions", prompt="p", seconds=4, video=ref)
    assert_error(as_number, 400, "seconds", "invalid_type")
    assert_error(derive(simulator, "extensions", seconds="4", video=ref), 400, "prompt")
    assert_error(derive(simulator, "extensions", prompt="p", seconds="4"), 400, "video")
    simulator.configure(speed=8)
    added = derive(simulator, "extensions", prompt="p", seconds="4", video=ref).json()
    assert watch(simulator, added["id"]) == ["queued", "in_progress", "completed"]
    simulator.configure(speed=2)
    running = create_ok(simulator)
    early = derive(simulator, "extensions", prompt="p", seconds="4", video={"id": running["id"]})
    assert_error(early, 400, None, "video_not_completed")


@pytest.mark.parametrize("kind", ["edits", "extensions"])
def test_idempotency_key_on_edits_and_extensions(simulator: Simulator, kind: str) -> None:
    source = simulator.seed(1)[0]
    body = {"prompt": "once", "video": {"id": source["id"]}}
    if kind == "extensions":
        body["seconds"] = "4"
    one = derive(simulator, kind, key="k-1", **body)
    two = derive(simulator, kind, key="k-1", **body)
    assert one.json()["id"] == two.json()["id"]
    assert two.headers.get("idempotent-replayed") == "true"
    assert derive(simulator, kind, key="k-2", **body).json()["id"] != one.json()["id"]
    assert simulator.stats()["jobs_created"] == 2


# -- models ----------------------------------------------------------------------------------


def test_models_are_listed_in_the_openai_shape(simulator: Simulator) -> None:
    response = call(simulator, "GET", "/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert {m["id"] for m in body["data"]} >= {"sora-2", "sora-2-pro"}
    for model in body["data"]:
        assert set(model) == {"id", "object", "created", "owned_by"}
        assert model["object"] == "model" and isinstance(model["created"], int)
    simulator.configure(api_key="sk-test")
    wrong = call(simulator, "GET", "/models", headers={"Authorization": "Bearer sk-nope"})
    assert_error(wrong, 401, None, "invalid_api_key")
    assert call(simulator, "GET", "/models").status_code == 200


# -- conformance with the published document -------------------------------------------------


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "PURGE", "PATCH", "OPTIONS"])
def test_every_method_gets_the_json_envelope(simulator: Simulator, method: str) -> None:
    on_known = call(simulator, method, "/videos")
    assert_error(on_known, 405, None, "method_not_allowed")
    assert on_known.headers["Allow"] == "GET, HEAD, POST"
    assert_error(call(simulator, method, "/nothing-here"), 404)
    assert_error(call(simulator, method, "/videos/video_x/content"), 405)


@pytest.mark.parametrize(
    ("line", "status"), [(b"GET /v1/videos HTTP/9.9", b"505"), (b"NONSENSE", b"400")]
)
def test_a_malformed_request_line_gets_the_json_envelope(
    simulator: Simulator, line: bytes, status: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", simulator.port), timeout=5) as sock:
        sock.sendall(line + b"\r\n\r\n")
        answer = sock.makefile("rb").read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status) and b"application/json" in head
    assert b'"error"' in body


@pytest.mark.parametrize("query", ["variant=", "variant=sheet"])
def test_empty_or_wrong_variant_is_refused(simulator: Simulator, query: str) -> None:
    video = simulator.seed(1)[0]
    assert_error(call(simulator, "GET", f"/videos/{video['id']}/content?{query}"), 400, "variant")


@pytest.mark.parametrize("query", ["limit=", "order=", "after="])
def test_empty_list_parameters_are_refused(simulator: Simulator, query: str) -> None:
    assert_error(call(simulator, "GET", f"/videos?{query}"), 400, query.rstrip("="))


def test_limit_zero_is_an_empty_page(simulator: Simulator) -> None:
    simulator.seed(2)
    page = call(simulator, "GET", "/videos", params={"limit": 0}).json()
    assert page == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": True,
    }


def test_an_image_part_without_a_filename_is_a_reference(simulator: Simulator) -> None:
    parts: Any = {
        "prompt": (None, "From this frame"),
        "size": (None, "1280x720"),
        "input_reference": (None, png(1280, 720), "image/png"),
    }
    accepted = call(simulator, "POST", "/videos", files=parts)
    assert accepted.status_code == 200, accepted.text
    done = wait_for(simulator, accepted.json()["id"], {"completed"})
    assert done["status"] == "completed"
    parts["input_reference"] = (None, png(640, 480), "image/png")  # still checked as an image
    assert_error(call(simulator, "POST", "/videos", files=parts), 400, "input_reference")
