"""The dashboard through a real LiteLLM proxy with the simulator as its upstream.

Skipped unless asked for (`LITELLM=1 make test`, which installs `litellm[proxy]` into its own
venv, .venv-litellm: its pins are not the dashboard's). What LiteLLM 1.108 does differently is
in the README's gateway table; these tests hold the three things the dashboard promises there.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.contrib import messages
from PIL import Image

from jobs.models import Provider, Video
from jobs.services.demo import seed_catalog
from jobs.services.imports import import_one
from jobs.services.manage import check_provider
from jobs.services.submit import submit_create
from simulator.testing import Simulator, free_port, stop_process, wait_port
from tests.conftest import ROOT, drive

pytestmark = pytest.mark.skipif(
    os.environ.get("LITELLM") != "1", reason="a real LiteLLM proxy: run with LITELLM=1 make test"
)

MASTER_KEY = "sk-litellm-test-master"
CONFIG = """\
model_list:
  - model_name: sora-2
    litellm_params:
      model: openai/sora-2
      api_base: {upstream}
      api_key: simulator-key
general_settings:
  master_key: {key}
"""


@pytest.fixture(scope="module")
def litellm_url(
    simulator_process: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    binary = Path(os.environ.get("LITELLM_BIN", ROOT / ".venv-litellm" / "bin" / "litellm"))
    if not binary.exists():
        pytest.fail(f"LITELLM=1 but there is no LiteLLM at {binary} (make test installs it)")
    folder = tmp_path_factory.mktemp("litellm")
    config = folder / "config.yaml"
    config.write_text(CONFIG.format(upstream=simulator_process.base_url, key=MASTER_KEY))
    port = free_port()
    env = {**os.environ, "LITELLM_LOG": "ERROR", "NO_DOCS": "True"}
    with (folder / "proxy.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
            env=env,
        )
    try:
        wait_port(port, proc, timeout=120)  # the proxy imports a lot before it listens
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while requests.get(f"{url}/health/liveliness", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "LiteLLM never became live"
            time.sleep(0.2)
        yield f"{url}/v1"
    finally:
        stop_process(proc)


@pytest.fixture
def gateway(
    db: None, simulator: Simulator, litellm_url: str, monkeypatch: pytest.MonkeyPatch
) -> Provider:
    monkeypatch.setenv("PROVIDER_KEY_LITELLM", MASTER_KEY)
    provider = Provider.objects.create(
        name="LiteLLM", base_url=litellm_url, api_key_env="PROVIDER_KEY_LITELLM", is_default=True
    )
    seed_catalog(provider)
    return provider


def test_check_connection_tells_a_wrong_key_from_the_right_one(
    gateway: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    level, words = check_provider(provider=gateway)
    assert level != messages.ERROR, words
    assert "accepted" in words

    monkeypatch.setenv("PROVIDER_KEY_LITELLM", "sk-not-a-key-litellm-knows")
    level, words = check_provider(provider=gateway)
    assert level == messages.ERROR, words
    assert "accepted" not in words.replace("not accepted", "")


def test_previews_are_real_images_made_from_the_one_download(
    gateway: Provider, simulator: Simulator, alice: object
) -> None:
    video = submit_create(
        user=alice,  # type: ignore[arg-type]
        provider=gateway,
        prompt="A lighthouse at dusk, through a gateway",
        model="sora-2",
        size="1280x720",
        seconds="4",
        key=uuid.uuid4(),
    )
    drive(lambda: Video.objects.get(pk=video.pk).asset_state != Video.Assets.PENDING, timeout=90)
    video.refresh_from_db()
    assert video.asset_state == Video.Assets.ARCHIVED, video.last_error
    assert video.previews_made_here
    with Image.open(video.thumbnail_file.path) as poster:
        assert poster.format == "WEBP"
        assert poster.size == (1280, 720)
    with Image.open(video.spritesheet_file.path) as sheet:
        assert sheet.format == "JPEG"
    assert video.sprite_grid and video.sprite_grid["frames"] >= 1


def test_a_remix_made_elsewhere_is_linked_to_its_source_on_import(
    gateway: Provider, simulator: Simulator
) -> None:
    """LiteLLM answers a remix's remixed_from_video_id with the upstream's raw id."""
    auth = {"Authorization": f"Bearer {MASTER_KEY}"}
    base = gateway.base_url
    source = requests.post(
        f"{base}/videos",
        files=[(k, (None, v)) for k, v in {"prompt": "A red kite", "model": "sora-2"}.items()],
        headers=auth,
        timeout=30,
    ).json()
    source_id = source["id"]

    def finished(video_id: str) -> bool:
        answer = requests.get(f"{base}/videos/{video_id}", headers=auth, timeout=30).json()
        return bool(answer["status"] == "completed")

    deadline = time.monotonic() + 60
    while not finished(source_id):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    remix = requests.post(
        f"{base}/videos/{source_id}/remix", json={"prompt": "A blue kite"}, headers=auth, timeout=30
    ).json()
    decoded = base64.b64decode(remix["id"].removeprefix("video_") + "==").decode()
    assert decoded.startswith("litellm:")
    assert not remix["remixed_from_video_id"].startswith("video_bGl0")  # the upstream's raw id

    video, created = import_one(provider=gateway, video_id=remix["id"])
    assert created
    assert video.source is not None, video.last_error
    assert video.source.video_id == source_id
    assert video.kind == Video.Kind.REMIX
