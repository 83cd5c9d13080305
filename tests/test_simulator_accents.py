"""The simulator's gateway accents: each quirk answers the way a real gateway does (over HTTP)."""

from __future__ import annotations

import base64
import calendar
import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from simulator.quirks import ACCENTS, QUIRKS, decode_litellm, encode_litellm, parse_quirks
from simulator.testing import ControlError
from tests.conftest import Simulator, start_simulator, stop_simulator
from tests.test_simulator import assert_error, call, create_ok, wait_for

MP4_BRAND = re.compile(rb"^....ftyp")


@pytest.fixture(autouse=True)
def _no_key(simulator_process: Simulator) -> Iterator[None]:
    yield
    simulator_process.configure(api_key=None)


def path_id(video_id: str) -> str:
    return urllib.parse.quote(video_id, safe="")


def test_presets_and_names_are_checked() -> None:
    assert parse_quirks("litellm") == list(ACCENTS["litellm"])
    assert parse_quirks(["no_delete", "new-api"]) == [
        name for name in QUIRKS if name in {*ACCENTS["new-api"], "no_delete"}
    ]
    with pytest.raises(ValueError, match="unknown quirk 'no_such'"):
        parse_quirks("no_variants,no_such")


def test_quirks_are_set_at_run_time_and_reset_clears_them(simulator: Simulator) -> None:
    assert simulator.configure(quirks=["litellm"])["quirks"] == list(ACCENTS["litellm"])
    with pytest.raises(ControlError) as refused:
        simulator.configure(quirks=["no_such_quirk"])
    assert refused.value.status == 400
    simulator.reset()
    assert simulator.config()["quirks"] == []


def test_cli_accent_and_quirks_survive_reset(tmp_path: Path) -> None:
    sim = start_simulator(tmp_path, accent="new-api", quirks=["string_errors"])
    try:
        expected = [name for name in QUIRKS if name in {*ACCENTS["new-api"], "string_errors"}]
        assert sim.config()["quirks"] == expected
        sim.configure(quirks=[])
        sim.reset()
        assert sim.config()["quirks"] == expected
        video = requests.post(
            f"{sim.base_url}/videos",
            json={"prompt": "x"},
            headers={"Authorization": "Bearer k"},
            timeout=15,
        ).json()
        assert video["id"].startswith("task_")
    finally:
        stop_simulator(sim)


def test_no_variants_answers_the_mp4_whatever_is_asked(simulator: Simulator) -> None:
    video = simulator.seed(1)[0]
    simulator.configure(quirks=["no_variants"])
    for variant in ("thumbnail", "spritesheet", "bogus", ""):
        response = call(simulator, "GET", f"/videos/{video['id']}/content?variant={variant}")
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "video/mp4"
        assert MP4_BRAND.match(response.content)
    simulator.configure(quirks=[])
    thumbnail = call(simulator, "GET", f"/videos/{video['id']}/content?variant=thumbnail")
    assert thumbnail.headers["Content-Type"] == "image/webp"


def test_litellm_ids_wrap_every_id_and_remix_keeps_the_raw_source(simulator: Simulator) -> None:
    simulator.configure(quirks=["litellm_ids"])
    source = simulator.seed(1)[0]
    raw = decode_litellm(source["id"])
    assert raw is not None and raw.startswith("video_")
    decoded = base64.b64decode(source["id"].removeprefix("video_")).decode()
    routing = f"litellm:custom_llm_provider:openai;model_id:sora-2;video_id:{raw}"
    assert decoded.startswith(routing + ";deployment_id:")  # as LiteLLM 1.108 answers
    assert source["id"] == encode_litellm("sora-2", raw)
    got = call(simulator, "GET", f"/videos/{path_id(source['id'])}")
    assert got.status_code == 200 and got.json()["id"] == source["id"]
    content = call(simulator, "GET", f"/videos/{path_id(source['id'])}/content")
    assert content.status_code == 200 and MP4_BRAND.match(content.content)
    remix = call(
        simulator, "POST", f"/videos/{path_id(source['id'])}/remix", json={"prompt": "again"}
    ).json()
    assert decode_litellm(remix["id"]) is not None
    assert remix["remixed_from_video_id"] == raw  # as LiteLLM answers: the upstream's id
    listed = call(simulator, "GET", "/videos", params={"order": "asc"}).json()
    assert [v["id"] for v in listed["data"]] == [source["id"], remix["id"]]
    assert listed["first_id"] == source["id"]
    after = call(simulator, "GET", "/videos", params={"order": "asc", "after": source["id"]})
    assert [v["id"] for v in after.json()["data"]] == [remix["id"]]
    deleted = call(simulator, "DELETE", f"/videos/{path_id(source['id'])}")
    assert deleted.json() == {"id": source["id"], "object": "video.deleted", "deleted": True}


def test_list_needs_hint_is_refused_before_the_key(simulator: Simulator) -> None:
    simulator.configure(quirks=["list_needs_hint"], api_key="sk-test")
    simulator.seed(1)
    wrong = {"Authorization": "Bearer sk-wrong"}
    for headers in ({}, wrong):
        refused = call(simulator, "GET", "/videos", headers=headers)
        assert_error(refused, 400, "custom_llm_provider")
    assert_error(call(simulator, "GET", "/videos?custom_llm_provider="), 400, "custom_llm_provider")
    hinted = call(simulator, "GET", "/videos", params={"custom_llm_provider": "openai"})
    assert hinted.status_code == 200 and len(hinted.json()["data"]) == 1
    unknown_key = call(
        simulator, "GET", "/videos", params={"custom_llm_provider": "openai"}, headers=wrong
    )
    assert_error(unknown_key, 401, None, "invalid_api_key")


def test_no_delete_answers_405_and_keeps_the_video(simulator: Simulator) -> None:
    video = simulator.seed(1)[0]
    simulator.configure(quirks=["no_delete"])
    refused = call(simulator, "DELETE", f"/videos/{video['id']}")
    assert_error(refused, 405, None, "method_not_allowed")
    assert "DELETE" not in refused.headers["Allow"]
    assert call(simulator, "GET", f"/videos/{video['id']}").status_code == 200


@pytest.mark.parametrize(
    ("quirk", "method", "path"),
    [
        ("no_models", "GET", "/models"),
        ("no_list", "GET", "/videos"),
        ("no_edits", "POST", "/videos/edits"),
        ("no_extensions", "POST", "/videos/extensions"),
    ],
)
def test_missing_routes_answer_404(
    simulator: Simulator, quirk: str, method: str, path: str
) -> None:
    source = simulator.seed(1)[0]
    body: dict[str, Any] = {"prompt": "p", "video": {"id": source["id"]}}
    if path.endswith("extensions"):
        body["seconds"] = "4"
    kwargs: dict[str, Any] = {"json": body} if method == "POST" else {}
    assert call(simulator, method, path, **kwargs).status_code == 200
    simulator.configure(quirks=[quirk])
    assert_error(call(simulator, method, path, **kwargs), 404)
    assert_error(call(simulator, method, path, headers={"Authorization": ""}), 404)


def test_status_aliases_and_unknown_status(simulator: Simulator) -> None:
    simulator.configure(speed=4, quirks=["status_aliases"])  # 5 s render: time to watch
    video = create_ok(simulator)
    assert video["status"] == "pending"
    assert wait_for(simulator, video["id"], {"processing"})["progress"] >= 0
    simulator.configure(quirks=["unknown_status"])
    assert call(simulator, "GET", f"/videos/{video['id']}").json()["status"] == "unknown"
    simulator.configure(quirks=[])
    assert call(simulator, "GET", f"/videos/{video['id']}").json()["status"] == "in_progress"


def test_rfc3339_times(simulator: Simulator) -> None:
    video = simulator.seed(1)[0]
    simulator.configure(quirks=["rfc3339_times"])
    shown = call(simulator, "GET", f"/videos/{video['id']}").json()
    for name in ("created_at", "completed_at", "expires_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", shown[name]), shown[name]
        epoch = calendar.timegm(time.strptime(shown[name], "%Y-%m-%dT%H:%M:%SZ"))
        assert epoch == video[name]


def test_no_progress_and_string_errors(simulator: Simulator) -> None:
    simulator.configure(fail_rate=1, quirks=["no_progress", "string_errors"])
    video = create_ok(simulator)
    assert "progress" not in video
    failed = wait_for(simulator, video["id"], {"failed"})
    assert "progress" not in failed
    assert isinstance(failed["error"], str) and failed["error"]
    simulator.configure(quirks=[])
    plain = call(simulator, "GET", f"/videos/{video['id']}").json()
    assert plain["error"]["message"] == failed["error"]


def test_content_url_serves_the_mp4_without_auth(simulator: Simulator) -> None:
    simulator.configure(quirks=["content_url"])
    running = create_ok(simulator)
    assert "metadata" not in running
    done = wait_for(simulator, running["id"], {"completed"})
    url = done["metadata"]["url"]
    assert url == f"{simulator.root}/files/{running['id']}.mp4"
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4" and MP4_BRAND.match(response.content)
    assert simulator.stats()["requests"]["GET /files/{id}.mp4"] == 1
    assert_error(call(simulator, "GET", f"/videos/{running['id']}/content"), 404)
    assert requests.get(f"{simulator.root}/files/video_nope.mp4", timeout=5).status_code == 404


def test_content_400_until_done(simulator: Simulator) -> None:
    simulator.configure(speed=2, quirks=["content_400_until_done"])
    video = create_ok(simulator)
    error = assert_error(call(simulator, "GET", f"/videos/{video['id']}/content"), 400)
    assert error["message"] == "Task is not completed yet"


def test_task_ids(simulator: Simulator) -> None:
    simulator.configure(quirks=["task_ids"])
    video = create_ok(simulator)
    assert re.fullmatch(r"task_[A-Za-z0-9_-]+", video["id"])
    assert call(simulator, "GET", f"/videos/{video['id']}").json()["id"] == video["id"]
    assert simulator.seed(1)[0]["id"].startswith("task_")


def test_opaque_ids_work_percent_encoded_everywhere(simulator: Simulator) -> None:
    simulator.configure(quirks=["opaque_ids"])
    first, second = simulator.seed(2)
    vid = first["id"]
    assert {"/", "+", "="} <= set(vid) and vid.endswith("@sim")
    assert call(simulator, "GET", f"/videos/{path_id(vid)}").json()["id"] == vid
    content = call(simulator, "GET", f"/videos/{path_id(vid)}/content")
    assert content.status_code == 200 and MP4_BRAND.match(content.content)
    thumb = call(simulator, "GET", f"/videos/{path_id(vid)}/content?variant=thumbnail")
    assert thumb.headers["Content-Type"] == "image/webp"
    page = call(simulator, "GET", "/videos", params={"after": vid, "order": "asc"}).json()
    assert [v["id"] for v in page["data"]] == [second["id"]]
    assert simulator.expire(path_id(vid))["id"] == vid
    assert call(simulator, "DELETE", f"/videos/{path_id(vid)}").json()["id"] == vid
    assert_error(call(simulator, "GET", f"/videos/{path_id(vid)}"), 404)
