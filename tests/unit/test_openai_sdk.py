"""The official `openai` SDK works against the simulator (wire compatibility check)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import openai
import pytest
from openai import OpenAI
from PIL import Image

from tests.conftest import Simulator

# The SDK marks every Videos method deprecated (the hosted API shuts down); the wire shape lives on.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def sdk(sim: Simulator, max_retries: int = 0) -> OpenAI:
    return OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=max_retries)


def test_sdk_create_poll_download_remix_delete(simulator: Simulator, tmp_path: Path) -> None:
    client = sdk(simulator)
    video = client.videos.create(
        prompt="A lighthouse in a storm", model="sora-2-pro", seconds="4", size="1280x720"
    )
    assert (video.status, video.progress) == ("queued", 0)
    assert (video.model, video.seconds, video.size) == ("sora-2-pro", "4", "1280x720")
    assert video.completed_at is None and video.error is None
    assert client.videos.retrieve(video.id).id == video.id
    done = client.videos.poll(video.id)  # honours openai-poll-after-ms
    assert done.status == "completed" and done.progress == 100
    assert done.completed_at is not None and done.expires_at is not None

    content = client.videos.download_content(video.id)
    target = tmp_path / "clip.mp4"
    content.write_to_file(target)
    data = target.read_bytes()
    assert data[4:8] == b"ftyp"
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
    thumb = client.videos.download_content(video.id, variant="thumbnail")
    assert Image.open(io.BytesIO(thumb.content)).format == "WEBP"

    remix = client.videos.remix(video.id, prompt="The same lighthouse at dawn")
    assert remix.remixed_from_video_id == video.id
    assert (remix.model, remix.size, remix.seconds) == ("sora-2-pro", "1280x720", "4")
    client.videos.poll(remix.id)

    deleted = client.videos.delete(video.id)
    assert deleted.id == video.id and deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)


def test_sdk_create_with_input_reference(simulator: Simulator) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (720, 1280), (0, 90, 200)).save(buffer, format="PNG")
    client = sdk(simulator)
    video = client.videos.create(
        prompt="From a still", input_reference=("still.png", buffer.getvalue(), "image/png")
    )
    assert video.size == "720x1280"
    wrong = io.BytesIO()
    Image.new("RGB", (64, 64)).save(wrong, format="PNG")
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.videos.create(prompt="x", input_reference=("s.png", wrong.getvalue(), "image/png"))
    assert excinfo.value.param == "input_reference"


def test_sdk_list_pages_through_everything(simulator: Simulator) -> None:
    seeded = {video["id"] for video in simulator.seed(7)}
    client = sdk(simulator)
    page = client.videos.list(limit=3)
    assert len(page.data) == 3 and page.has_more
    assert {video.id for video in client.videos.list(limit=3)} == seeded  # auto-pagination
    ascending = [video.id for video in client.videos.list(limit=2, order="asc")]
    assert ascending == [video.id for video in client.videos.list(limit=100)][::-1]
    assert simulator.stats()["requests"]["GET /v1/videos"] >= 1 + 3 + 4 + 1


def test_sdk_errors(simulator: Simulator) -> None:
    client = sdk(simulator)
    with pytest.raises(openai.BadRequestError) as too_long:
        client.videos.create(prompt="x" * 32001)
    assert too_long.value.param == "prompt"
    assert too_long.value.code == "string_above_max_length"
    assert too_long.value.request_id and too_long.value.request_id.startswith("req_")
    with pytest.raises(openai.BadRequestError) as bad_size:
        client.videos.create(prompt="x", model="sora-2", size="1792x1024")
    assert bad_size.value.param == "size"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve("video_" + "f" * 32)
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content("video_" + "f" * 32)
    simulator.script_faults("429")
    with pytest.raises(openai.RateLimitError):
        client.videos.list()


def test_sdk_retries_through_injected_faults(simulator: Simulator) -> None:
    """With its default retries the SDK gets through a 429 (Retry-After honoured) and a 503."""
    simulator.configure(retry_after=0.1)
    try:
        simulator.script_faults("429", method="GET")
        simulator.script_faults("503", method="GET")
        client = sdk(simulator, max_retries=2)
        assert client.videos.list().data == []
        assert simulator.stats()["faults_injected"] == 2
    finally:
        simulator.configure(retry_after=1)
