"""Archiving through gateways: previews made here when the provider does not serve them (one
download per video), the finished file at a URL in the object, and a 400 "not completed yet".
Against the simulator with its gateway quirks, or a stand-in server over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from jobs import archive
from jobs.lib import media_check
from jobs.models import Provider, Video
from simulator import media
from tests.conftest import Simulator, StandInHandler, drive, serving
from tests.helpers import import_by_id, poll_due_videos, stand_in_row


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "_state", archive._ProcessState())


def archived(video: Video) -> Video:
    drive(lambda: Video.objects.get(pk=video.pk).asset_state != Video.Assets.PENDING)
    return Video.objects.get(pk=video.pk)


def content_requests(simulator: Simulator) -> int:
    return sum(n for route, n in simulator.stats()["requests"].items() if "/content" in route)


def stored(media_root: Path, video: Video) -> dict[str, Path]:
    return {
        variant: Path(media_root, str(getattr(video, field).name))
        for variant, field in archive.FILE_FIELDS.items()
    }


def assert_previews_made_here(video: Video, media_root: Path) -> None:
    assert video.asset_state == Video.Assets.ARCHIVED, video.last_error
    assert video.previews_made_here
    assert video.sprite_grid == {"columns": 4, "rows": 1, "frames": 4}  # a 4 s clip
    files = stored(media_root, video)
    for variant, path in files.items():
        assert media_check.check_file(variant, path) is None
    with Image.open(files["thumbnail"]) as poster:
        assert poster.format == "WEBP" and poster.size == (720, 1280)
    with Image.open(files["spritesheet"]) as sheet:
        assert sheet.format == "JPEG" and sheet.size == (4 * 180, 320)


def test_without_variants_the_previews_are_made_here_from_one_download(
    provider: Provider, simulator: Simulator, media_root: Path
) -> None:
    simulator.configure(quirks=["no_variants"])
    Provider.objects.filter(pk=provider.pk).update(serves_variants=False)
    provider.refresh_from_db()
    remote = simulator.seed(1)[0]
    video, _ = import_by_id(provider=provider, video_id=remote["id"])
    video = archived(video)
    assert_previews_made_here(video, media_root)
    assert content_requests(simulator) == 1  # the MP4 only, once
    assert simulator.stats()["per_video"][remote["id"]]["content"] == 1


def test_a_provider_that_answers_the_mp4_for_every_variant_gets_previews_made_here(
    provider: Provider, simulator: Simulator, media_root: Path
) -> None:
    # serves_variants left on (nobody told us): the client sees video/mp4 for the thumbnail
    # and refuses it before reading the body; the previews are made here all the same.
    simulator.configure(quirks=["no_variants"])
    video, _ = import_by_id(provider=provider, video_id=simulator.seed(1)[0]["id"])
    video = archived(video)
    assert_previews_made_here(video, media_root)


def test_a_downloaded_spritesheet_has_its_grid_read_off(completed: Video, media_root: Path) -> None:
    video = archived(completed)
    assert video.asset_state == Video.Assets.ARCHIVED and not video.previews_made_here
    assert video.sprite_grid == {"columns": 4, "rows": 1, "frames": 4}


# --- a stand-in gateway ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    media.write_video(path, media.Picture("a harbour at dawn", "320x180", 4, fps=6))
    return path.read_bytes()


def gateway(answers: dict[str, tuple[int, str, bytes]]) -> Any:
    """A provider whose content route answers each variant with (status, type, body); every
    request is counted by variant in `Handler.seen`."""

    class Handler(StandInHandler):
        seen: list[str] = []

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            variant = parse_qs(parts.query).get("variant", ["video"])[0]
            Handler.seen.append(variant)
            self.reply(*answers[variant])

    return Handler


@pytest.fixture
def standin_row(db: None, alice: Any) -> Callable[[str], Video]:
    def make(base_url: str) -> Video:
        return stand_in_row(
            base_url, alice, video_id="video_gw", prompt="a harbour at dawn", size="320x180"
        )

    return make


NOT_FOUND = (
    404,
    "application/json",
    json.dumps({"error": {"message": "No such variant"}}).encode(),
)


def test_a_thumbnail_answered_as_video_mp4_is_made_here(
    standin_row: Any, clip: bytes, media_root: Path
) -> None:
    picture = media.Picture("a harbour at dawn", "320x180", 4, fps=6)
    sheet_path = media_root.parent / "sheet.jpg"
    media.write_spritesheet(sheet_path, picture)
    handler = gateway(
        {
            "video": (200, "video/mp4", clip),
            "thumbnail": (200, "video/mp4", clip),
            "spritesheet": (200, "image/jpeg", sheet_path.read_bytes()),
        }
    )
    with serving(handler) as url:
        video = standin_row(url)
        assert poll_due_videos() == 1
    video.refresh_from_db()
    assert video.asset_state == Video.Assets.ARCHIVED, video.last_error
    assert video.previews_made_here
    files = stored(media_root, video)
    with Image.open(files["thumbnail"]) as poster:
        assert poster.format == "WEBP" and poster.size == (320, 180)
    assert files["spritesheet"].read_bytes() == sheet_path.read_bytes()  # the provider's own
    assert video.sprite_grid == {"columns": 4, "rows": 1, "frames": 4}  # read off it
    assert handler.seen == ["video", "thumbnail", "spritesheet"]


def test_the_mp4_served_as_an_image_is_not_kept_as_one(
    standin_row: Any, clip: bytes, media_root: Path
) -> None:
    # What LiteLLM did before the fix was visible: the same bytes, labelled image/webp and
    # image/jpeg. They fail the image check and are recognised as the MP4: made here instead.
    handler = gateway(
        {
            "video": (200, "video/mp4", clip),
            "thumbnail": (200, "image/webp", clip),
            "spritesheet": (200, "image/jpeg", clip),
        }
    )
    with serving(handler) as url:
        video = standin_row(url)
        assert poll_due_videos() == 1
    video.refresh_from_db()
    assert video.asset_state == Video.Assets.ARCHIVED, video.last_error
    assert video.previews_made_here and video.archive_attempts == 0
    assert video.sprite_grid == {"columns": 4, "rows": 1, "frames": 4}
    for variant, path in stored(media_root, video).items():
        assert media_check.check_file(variant, path) is None
    assert not list(Path(media_root, archive.PARTIAL_DIR).glob("*"))


def test_a_missing_spritesheet_is_made_here_and_the_job_is_not_forgotten(
    standin_row: Any, clip: bytes, media_root: Path
) -> None:
    buffer = media_root.parent / "poster.webp"
    media.write_thumbnail(buffer, media.Picture("a harbour at dawn", "320x180", 4, fps=6))
    handler = gateway(
        {
            "video": (200, "video/mp4", clip),
            "thumbnail": (200, "image/webp", buffer.read_bytes()),
            "spritesheet": NOT_FOUND,
        }
    )
    with serving(handler) as url:
        video = standin_row(url)
        assert poll_due_videos() == 1
    video.refresh_from_db()
    assert video.status == Video.Status.COMPLETED and video.error_code == ""
    assert video.asset_state == Video.Assets.ARCHIVED, video.last_error
    assert video.previews_made_here
    assert video.sprite_grid == {"columns": 4, "rows": 1, "frames": 4}


def test_a_video_that_cannot_be_turned_into_previews_is_counted_and_said(
    standin_row: Any, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs.lib import previews

    def broken(*args: object) -> None:
        raise previews.PreviewFailed("no frame decodes at 2.0 s")

    monkeypatch.setattr(previews, "write_poster", broken)
    clip_path = media_root.parent / "c.mp4"
    media.write_video(clip_path, media.Picture("x", "320x180", 4, fps=6))
    handler = gateway({"video": (200, "video/mp4", clip_path.read_bytes()), "thumbnail": NOT_FOUND})
    with serving(handler) as url:
        video = standin_row(url)
        assert poll_due_videos() == 1
    video.refresh_from_db()
    assert video.asset_state == Video.Assets.PENDING and video.archive_attempts == 1
    assert "thumbnail" in video.last_error and "no frame decodes at 2.0 s" in video.last_error
    assert not [p for p in Path(media_root).rglob("*") if p.is_file()]


# --- where the file is, and when it is ready ---------------------------------------------------


def test_the_video_is_fetched_from_the_url_in_the_object(
    provider: Provider, simulator: Simulator, media_root: Path
) -> None:
    simulator.configure(quirks=["content_url"])
    remote = simulator.seed(1)[0]
    video, _ = import_by_id(provider=provider, video_id=remote["id"])
    assert video.content_url == remote["metadata"]["url"]
    video = archived(video)
    # /content answers 404 here: the MP4 came from the URL, the previews were made from it.
    assert_previews_made_here(video, media_root)
    requests = simulator.stats()["requests"]
    assert requests["GET /files/{id}.mp4"] == 1  # the MP4, once, from the URL
    assert requests["GET /v1/videos/{id}/content"] == 2  # the two variants, refused (404)


def test_a_400_not_completed_yet_waits_without_counting_a_failure(
    provider: Provider, simulator: Simulator, media_root: Path
) -> None:
    simulator.configure(quirks=["content_400_until_done"], speed=20)  # a 4 s clip takes 1 s
    remote = provider.client().create(prompt="a slow tide", model="sora-2", seconds="4")
    video, _ = import_by_id(provider=provider, video_id=remote.id)
    # A gateway said "completed" a moment too soon: the content route still says 400.
    Video.objects.filter(pk=video.pk).update(
        status=Video.Status.COMPLETED, progress=100, asset_state=Video.Assets.PENDING
    )
    archive.archive_assets(Video.objects.select_related("provider").get(pk=video.pk))
    video.refresh_from_db()
    assert video.asset_state == Video.Assets.PENDING
    assert video.archive_attempts == 0  # not a failed download
    assert "has not finished" in video.last_error and video.next_poll_at is not None
    video = archived(video)  # the tracker asks again after the back-off, until it is done
    assert video.asset_state == Video.Assets.ARCHIVED, video.last_error
