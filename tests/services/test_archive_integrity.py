"""Archived means checked: verification, all-or-nothing storage, retries, full disks, stale
partials and `verify_archives`. Media are made here with PyAV and Pillow; providers are the
simulator or a stand-in server on 127.0.0.1 serving exactly the broken file under test."""

from __future__ import annotations

import errno
import io
import logging
import os
import struct
import time
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import av
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from jobs import archive, tracker
from jobs.lib import media_check
from jobs.models import Video
from jobs.services.manage import rearchive
from tests.conftest import StandInHandler, drive, serving
from tests.helpers import import_by_id, poll_due_videos, stand_in_row

# --- media made here -------------------------------------------------------------------------


def make_mp4(frames: int = 3) -> bytes:
    """A real, tiny MP4 (MPEG-4 Part 2, 64x48): ftyp, free, mdat, then moov at the end."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=6)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = Image.new("RGB", (64, 48), (i * 40, 100, 200))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def make_audio_only_mp4() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        frame.sample_rate = 8000
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    return buffer.getvalue()


def make_image(fmt: str) -> bytes:
    """Noise, so a JPEG's scan data is most of the file and a cut lands inside it."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(buffer, fmt)
    return buffer.getvalue()


def boxes(data: bytes) -> dict[bytes, bytes]:
    """The top-level boxes of a plain (32-bit sizes) MP4, each with its header."""
    found, offset = {}, 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        found[kind] = data[offset : offset + size]
        offset += size
    return found


@pytest.fixture(scope="module")
def mp4() -> bytes:
    return make_mp4()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- media_check -----------------------------------------------------------------------------


def test_a_whole_mp4_passes_every_check(tmp_path: Path, mp4: bytes) -> None:
    path = write(tmp_path, "ok.mp4", mp4)
    assert media_check.check_mp4_boxes(path) is None
    assert media_check.check_mp4_decodes(path) is None
    assert media_check.check_file("video", path, expected=len(mp4)) is None


def test_the_length_must_match_what_the_provider_announced(tmp_path: Path, mp4: bytes) -> None:
    assert media_check.check_length(1234, 5678) == (
        "the download was 1,234 bytes but the provider announced 5,678"
    )
    assert media_check.check_length(10, None) is None  # nothing announced: nothing to compare
    path = write(tmp_path, "ok.mp4", mp4)
    assert "announced" in (media_check.check_file("video", path, expected=len(mp4) + 1) or "")


def test_an_mp4_cut_short_ends_inside_a_box(tmp_path: Path, mp4: bytes) -> None:
    layout = boxes(mp4)
    mdat_at = mp4.index(layout[b"mdat"])
    cut = mdat_at + len(layout[b"mdat"]) // 2
    path = write(tmp_path, "cut.mp4", mp4[:cut])
    assert media_check.check_mp4(path) == (
        f"the MP4 ends inside its mdat box: {cut - mdat_at:,} of {len(layout[b'mdat']):,} bytes"
    )
    cut_in_moov = write(tmp_path, "cut2.mp4", mp4[:-10])
    assert "ends inside its moov box" in (media_check.check_mp4(cut_in_moov) or "")


def test_an_mp4_needs_its_moov_and_ftyp_boxes(tmp_path: Path, mp4: bytes) -> None:
    layout = boxes(mp4)
    no_moov = write(tmp_path, "a.mp4", layout[b"ftyp"] + layout[b"mdat"])
    assert media_check.check_mp4(no_moov) == "the MP4 has no moov box (the index a player needs)"
    no_ftyp = write(tmp_path, "b.mp4", layout[b"mdat"] + layout[b"moov"])
    assert "no ftyp box" in (media_check.check_mp4(no_ftyp) or "")


def test_box_sizes_must_add_up_exactly(tmp_path: Path, mp4: bytes) -> None:
    stray = write(tmp_path, "stray.mp4", mp4 + b"\0\0\0")
    assert "3 stray bytes after its last box" in (media_check.check_mp4(stray) or "")
    tiny = write(tmp_path, "tiny.mp4", mp4[:28] + struct.pack(">I4s", 4, b"free"))
    assert "impossible size of 4 bytes" in (media_check.check_mp4(tiny) or "")
    garbage = write(tmp_path, "garbage.mp4", mp4[:28] + b"\x00\x00\x00\x10\x01\x02\x03\x04")
    assert "unreadable box header at byte 28" in (media_check.check_mp4(garbage) or "")
    empty = write(tmp_path, "empty.mp4", b"")
    assert media_check.check_mp4(empty) == "the MP4 is empty (0 bytes)"


def test_64_bit_sizes_and_a_last_box_that_runs_to_the_end(tmp_path: Path, mp4: bytes) -> None:
    layout = boxes(mp4)
    payload = layout[b"mdat"][8:]
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + len(payload)) + payload
    to_end = struct.pack(">I4s", 0, b"moov") + layout[b"moov"][8:]
    path = write(tmp_path, "large.mp4", layout[b"ftyp"] + large + to_end)
    assert media_check.check_mp4_boxes(path) is None
    too_large = struct.pack(">I4sQ", 1, b"mdat", 16 + len(payload) + 10**9) + payload
    path = write(tmp_path, "over.mp4", layout[b"ftyp"] + too_large)
    assert "ends inside its mdat box" in (media_check.check_mp4_boxes(path) or "")
    assert "1,000,000," in (media_check.check_mp4_boxes(path) or "")


def test_an_mp4_must_decode_a_video_frame(tmp_path: Path, mp4: bytes) -> None:
    layout = boxes(mp4)
    zeroed = layout[b"mdat"][:8] + bytes(len(layout[b"mdat"]) - 8)
    path = write(tmp_path, "zero.mp4", mp4.replace(layout[b"mdat"], zeroed))
    assert media_check.check_mp4_boxes(path) is None  # whole, but not a video
    assert (media_check.check_mp4(path) or "").startswith("the MP4 does not decode: ")
    audio = write(tmp_path, "audio.mp4", make_audio_only_mp4())
    assert media_check.check_mp4(audio) == "the MP4 has no video stream"


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_images_open_verify_and_load(tmp_path: Path, fmt: str) -> None:
    data = make_image(fmt)
    assert media_check.check_image(write(tmp_path, "ok", data)) is None
    cut = write(tmp_path, "cut", data[: len(data) // 2])
    assert "does not open" in (media_check.check_image(cut) or "")
    junk = write(tmp_path, "junk", b"RIFF" + os.urandom(100))
    assert media_check.check_image(junk) == "the file is not an image in any format Pillow knows"


def test_a_truncated_jpeg_passes_verify_but_not_load(tmp_path: Path) -> None:
    data = make_image("JPEG")
    cut = write(tmp_path, "cut.jpg", data[: len(data) * 3 // 4])
    with Image.open(cut) as image:
        image.verify()  # Pillow's verify() alone would call it fine
    assert (media_check.check_image(cut) or "").startswith(
        "the JPEG file does not open: image file is truncated"
    )


# --- the archiver against a stand-in provider ------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a fresh process: no sweep done yet, the disk not known to be full."""
    monkeypatch.setattr(archive, "_state", archive._ProcessState())


@pytest.fixture
def queue_only(settings: Any) -> None:
    """Tasks are only queued, not run at once: the state between "asked" and "done" shows."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def media_server(files: dict[str, tuple[str, bytes]], cut: dict[str, int] | None = None) -> Any:
    """A provider whose content route serves `files` (variant -> type, body); a variant in
    `cut` announces its full length but sends only that many bytes, then closes."""
    short = dict(cut or {})

    class Handler(StandInHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            variant = parse_qs(parts.query).get("variant", ["video"])[0]
            if not parts.path.endswith("/content") or variant not in files:
                self.reply(404, "application/json", b'{"error": {"message": "No such video"}}')
                return
            content_type, body = files[variant]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: short.get(variant, len(body))])
            if variant in short:
                self.wfile.flush()
                self.close_connection = True

    return serving(Handler)


@pytest.fixture
def good_files(mp4: bytes) -> dict[str, tuple[str, bytes]]:
    return {
        "video": ("video/mp4", mp4),
        "thumbnail": ("image/webp", make_image("WEBP")),
        "spritesheet": ("image/jpeg", make_image("JPEG")),
    }


def try_again_now(video: Video) -> Video:
    """One more archive attempt, without waiting out the back-off (its length is not under
    test here; that there is one is checked by the caller)."""
    Video.objects.filter(pk=video.pk).update(next_poll_at=timezone.now())
    assert poll_due_videos() == 1
    return Video.objects.get(pk=video.pk)


def no_files_left(media_root: Path) -> bool:
    return not [p for p in Path(media_root).rglob("*") if p.is_file()]


def test_a_file_that_fails_verification_is_retried_then_marked_broken(
    db, alice, alice_client, good_files, mp4, media_root, settings
) -> None:
    layout = boxes(mp4)
    files = {**good_files, "video": ("video/mp4", layout[b"ftyp"] + layout[b"mdat"])}
    with media_server(files) as url:
        video = stand_in_row(url, alice)
        for attempt in range(1, settings.ARCHIVE_MAX_ATTEMPTS):
            video = try_again_now(video)
            assert video.asset_state == Video.Assets.PENDING and video.archive_attempts == attempt
            assert video.next_poll_at is not None and video.next_poll_at > timezone.now()
            assert video.last_error == (
                f"Archiving failed (attempt {attempt} of {settings.ARCHIVE_MAX_ATTEMPTS}), will "
                "retry: the video file failed verification: the MP4 has no moov box (the index "
                "a player needs)"
            )
            assert no_files_left(media_root) and not video.video_file
        # The provider still has the files for an hour: a passing fault must not cost the
        # archive, so it keeps trying, and the row says what failed.
        video = try_again_now(video)
        assert video.asset_state == Video.Assets.PENDING and video.next_poll_at is not None
        assert video.last_error.startswith(
            "The video file failed verification 5 times: the MP4 has no moov box"
        )
        assert "Still trying until the provider's copy expires" in video.last_error
        Video.objects.filter(pk=video.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        video = try_again_now(video)
    assert video.asset_state == Video.Assets.BROKEN and video.next_poll_at is None
    words = (
        "The video file failed verification 6 times: the MP4 has no moov box (the index a "
        "player needs). Use Archive again in the admin once the provider is fixed."
    )
    assert video.last_error == words
    assert no_files_left(media_root)
    for page in (reverse("jobs:list"), reverse("jobs:detail", args=[video.pk])):
        html = alice_client.get(page).content.decode()
        assert "Could not be archived" in html or words in html
        assert "The video file failed verification 6 times" in html


def test_archive_again_starts_afresh_and_a_success_resets_the_count(
    db, alice, good_files, media_root, queue_only
) -> None:
    with media_server(good_files) as url:
        video = stand_in_row(url, alice)
        Video.objects.filter(pk=video.pk).update(
            asset_state=Video.Assets.BROKEN, archive_attempts=5, next_poll_at=None,
            last_error="The video file failed verification 5 times: ...",
        )  # fmt: skip
        rearchive(video_id=video.pk)
        video.refresh_from_db()
        assert video.asset_state == Video.Assets.PENDING and video.archive_attempts == 0
        assert video.last_error == "" and video.next_poll_at is not None
        Video.objects.filter(pk=video.pk).update(archive_attempts=3)  # earlier failures
        video = try_again_now(video)
    assert video.asset_state == Video.Assets.ARCHIVED and video.archive_attempts == 0
    assert video.last_error == "" and video.next_poll_at is None
    assert Path(media_root, str(video.video_file.name)).read_bytes() == good_files["video"][1]
    assert not list(Path(media_root, archive.PARTIAL_DIR).glob("*"))


def test_a_broken_off_download_removes_every_file_of_the_attempt(
    db, alice, good_files, media_root
) -> None:
    # Video and thumbnail arrive whole; the spritesheet stops short: nothing may stay.
    with media_server(good_files, cut={"spritesheet": 1000}) as url:
        video = try_again_now(stand_in_row(url, alice))
    assert video.asset_state == Video.Assets.PENDING and video.archive_attempts == 1
    assert video.last_error.startswith("Archiving failed (attempt 1 of 5), will retry: ")
    assert "spritesheet" in video.last_error
    assert not video.video_file and not video.thumbnail_file
    assert no_files_left(media_root)


def test_a_provider_that_is_down_is_retried_without_counting(db, alice, media_root) -> None:
    with media_server({}) as url:
        pass  # nothing listens there any more: connection refused
    video = try_again_now(stand_in_row(url, alice))
    assert video.asset_state == Video.Assets.PENDING and video.archive_attempts == 0
    assert video.last_error.startswith("Archiving failed, will retry: ")


def test_a_file_over_the_size_cap_is_broken_at_once(
    db, alice, good_files, media_root, settings
) -> None:
    settings.MAX_ASSET_BYTES = 100  # smaller than the MP4: the client refuses it (InvalidAnswer)
    with media_server(good_files) as url:
        video = try_again_now(stand_in_row(url, alice))
    assert video.asset_state == Video.Assets.BROKEN and video.next_poll_at is None
    assert video.last_error.startswith("The provider's video file could not be used: ")
    assert video.last_error.endswith("Use Archive again in the admin once the provider is fixed.")
    assert no_files_left(media_root)


# --- a full disk -----------------------------------------------------------------------------


class FullDisk:
    """A temporary file on a disk that fills up after the first few bytes."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.name = real.name

    def write(self, data: bytes) -> int:
        self.real.write(data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.real.close()


def assert_disk_full_handled(video: Video, media_root: Path) -> None:
    video.refresh_from_db()
    assert video.asset_state == Video.Assets.PENDING and video.archive_attempts == 0
    assert video.last_error == archive.DISK_FULL_MESSAGE
    assert video.next_poll_at is not None
    assert video.next_poll_at > timezone.now() + timedelta(seconds=archive.DISK_FULL_RETRY - 30)
    assert no_files_left(media_root)


def test_a_full_disk_while_writing_leaves_nothing_and_is_logged_once(
    completed, simulator, media_root, monkeypatch, caplog
) -> None:
    real_open = archive._open_temporary
    monkeypatch.setattr(archive, "_open_temporary", lambda d, p: FullDisk(real_open(d, p)))
    second, _ = import_by_id(provider=completed.provider, video_id=simulator.seed(1)[0]["id"])
    with caplog.at_level(logging.ERROR, logger="jobs.archive"):
        assert poll_due_videos() == 2
        try_again_now(completed)  # the condition lasts: not logged again
    full = [r for r in caplog.records if "disk under MEDIA_ROOT is full" in r.getMessage()]
    assert len(full) == 1
    for video in (completed, second):
        assert_disk_full_handled(video, media_root)
    monkeypatch.setattr(archive, "_open_temporary", real_open)  # space again
    assert try_again_now(second).asset_state == Video.Assets.ARCHIVED
    assert not archive._state.disk_full  # the next full disk is news again


def test_a_full_disk_while_moving_removes_what_was_already_moved(
    completed, media_root, monkeypatch
) -> None:
    real_move, moves = archive._move, []

    def move(source: Path, target: str) -> None:
        moves.append(target)
        if len(moves) == 3:  # video and thumbnail are in place already
            raise OSError(errno.ENOSPC, "No space left on device")
        real_move(source, target)

    monkeypatch.setattr(archive, "_move", move)
    assert poll_due_videos() == 1
    assert len(moves) == 3
    assert_disk_full_handled(completed, media_root)
    assert not completed.video_file


# --- stale partials --------------------------------------------------------------------------


def stale_partial(media_root: Path, name: str, age: float) -> Path:
    path = Path(media_root, archive.PARTIAL_DIR, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half a video")
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_every_archiving_process_sweeps_stale_partials_once_a_minute(
    completed, simulator, media_root, settings
) -> None:
    lease = settings.TRACKER_LEASE_SECONDS
    old = stale_partial(media_root, "1-video-old.part", lease + 60)
    fresh = stale_partial(media_root, "2-video-fresh.part", lease / 2)  # maybe still in use
    # The task worker's way in (tasks.advance_video calls this), long before any tracker sweep.
    assert tracker.advance_video(video_id=completed.pk)
    assert Video.objects.get(pk=completed.pk).asset_state == Video.Assets.ARCHIVED
    assert not old.exists() and fresh.exists()
    # A second archive within the minute does not look again ...
    again = stale_partial(media_root, "3-video-old.part", lease + 60)
    second, _ = import_by_id(provider=completed.provider, video_id=simulator.seed(1)[0]["id"])
    assert tracker.advance_video(video_id=second.pk)
    assert again.exists()
    # ... but once the minute has passed, the next one does.
    archive._state.last_sweep -= archive.SWEEP_EVERY
    third, _ = import_by_id(provider=completed.provider, video_id=simulator.seed(1)[0]["id"])
    assert tracker.advance_video(video_id=third.pk)
    assert not again.exists() and fresh.exists()


@pytest.mark.django_db(transaction=True)  # the command closes and reopens its connection
def test_the_tracker_sweeps_when_it_starts(media_root, settings) -> None:
    old = stale_partial(media_root, "1-video-old.part", settings.TRACKER_LEASE_SECONDS + 60)
    out = StringIO()
    call_command("track_videos", "--once", "--threads", "2", stdout=out)
    assert "removed 1 unfinished downloads left by a dead worker" in out.getvalue()
    assert not old.exists()


# --- verify_archives -------------------------------------------------------------------------


@pytest.fixture
def archived(completed, simulator) -> Iterator[Video]:
    drive(lambda: Video.objects.get(pk=completed.pk).asset_state == Video.Assets.ARCHIVED)
    yield Video.objects.get(pk=completed.pk)


def verify(*args: str) -> tuple[str, bool]:
    """Run the command; its output and whether it exited non-zero."""
    out = StringIO()
    try:
        call_command("verify_archives", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue() + str(exc), True
    return out.getvalue(), False


def truncate(video: Video, media_root: Path) -> None:
    path = Path(media_root, str(video.video_file.name))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_verify_archives_finds_a_truncated_mp4_and_fetches_it_again(
    archived, media_root, queue_only
) -> None:
    output, failed = verify()
    assert not failed and "checked 1 archived video(s): 1 fine, 0 broken" in output
    truncate(archived, media_root)
    output, failed = verify()
    assert failed
    problem = next(line for line in output.splitlines() if line.startswith(f"video #{archived.pk}"))
    assert "the video file failed verification: the MP4 ends inside its" in problem
    assert "1 broken (run with --fix to fetch them again)" in output
    assert Video.objects.get(pk=archived.pk).asset_state == Video.Assets.ARCHIVED  # only looked
    output, failed = verify("--fix")
    assert not failed and "1 queued to be fetched again" in output
    video = Video.objects.get(pk=archived.pk)
    assert video.asset_state == Video.Assets.PENDING and video.archive_attempts == 0
    assert video.next_poll_at is not None and video.next_poll_at <= timezone.now()
    assert "failed verification" in video.last_error
    drive(lambda: Video.objects.get(pk=archived.pk).asset_state == Video.Assets.ARCHIVED)
    assert not verify()[1]


def test_verify_archives_marks_expired_ones_broken_and_keeps_failing(archived, media_root) -> None:
    truncate(archived, media_root)
    Video.objects.filter(pk=archived.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    output, failed = verify("--fix", "--video", str(archived.pk))
    assert failed and "not fetched again, the provider's links have expired" in output
    video = Video.objects.get(pk=archived.pk)
    assert video.asset_state == Video.Assets.BROKEN and video.next_poll_at is None
    assert "failed verification" in video.last_error and "expired" in video.last_error


def test_verify_archives_checks_only_the_videos_asked_for(archived, simulator, media_root) -> None:
    other, _ = import_by_id(provider=archived.provider, video_id=simulator.seed(1)[0]["id"])
    drive(lambda: Video.objects.get(pk=other.pk).asset_state == Video.Assets.ARCHIVED)
    truncate(archived, media_root)
    output, failed = verify("--video", str(other.pk))
    assert not failed and "checked 1 archived video(s): 1 fine" in output
    other.refresh_from_db()
    Path(media_root, str(other.thumbnail_file.name)).unlink()
    output, failed = verify("--video", str(other.pk), str(archived.pk), "999999")
    assert failed and "checked 2 archived video(s): 0 fine, 2 broken" in output
    assert "the thumbnail is missing" in output and "video #999999: not archived" in output


def test_a_padded_video_from_the_simulator_archives_and_verifies(
    completed, simulator, media_root
) -> None:
    # The simulator pads with a trailing `free` box (what bench/p6 uses): still one whole MP4.
    simulator.configure(pad_video_mb=0.5)
    drive(lambda: Video.objects.get(pk=completed.pk).asset_state == Video.Assets.ARCHIVED)
    video = Video.objects.get(pk=completed.pk)
    size = Path(media_root, str(video.video_file.name)).stat().st_size
    assert size == simulator.content_size(str(video.video_id), "video") > 512 * 1024
    assert verify("--video", str(video.pk)) == (
        "checked 1 archived video(s): 1 fine, 0 broken\n",
        False,
    )


def test_a_second_attempt_racing_the_first_leaves_the_winners_files(
    db, alice, good_files, media_root
) -> None:
    """A download that outlasted its lease: two attempts on one video, the later one loses."""
    with media_server(good_files) as url:
        video = stand_in_row(url, alice)
        late = Video.objects.select_related("provider").get(pk=video.pk)  # taken before
        archive.archive_assets(Video.objects.select_related("provider").get(pk=video.pk))
        won = Video.objects.get(pk=video.pk)
        assert won.asset_state == Video.Assets.ARCHIVED
        archive.archive_assets(late)  # finds the row archived: keeps nothing of its own
    row = Video.objects.get(pk=video.pk)
    names = [row.video_file.name, row.thumbnail_file.name, row.spritesheet_file.name]
    assert names == [won.video_file.name, won.thumbnail_file.name, won.spritesheet_file.name]
    for name in names:
        assert Path(media_root, str(name)).is_file(), name
    stored = [p for p in Path(media_root, "archive").rglob("*") if p.is_file()]
    assert len(stored) == 3  # the loser's copies are gone, the winner's are whole


def test_archive_again_removes_the_previous_files(db, alice, good_files, media_root) -> None:
    with media_server(good_files) as url:
        video = stand_in_row(url, alice)
        archive.archive_assets(Video.objects.select_related("provider").get(pk=video.pk))
        first = Path(media_root, str(Video.objects.get(pk=video.pk).video_file.name))
        Video.objects.filter(pk=video.pk).update(asset_state=Video.Assets.PENDING)
        archive.archive_assets(Video.objects.select_related("provider").get(pk=video.pk))
    second = Path(media_root, str(Video.objects.get(pk=video.pk).video_file.name))
    assert second.is_file() and second != first and not first.exists()
    assert len([p for p in Path(media_root, "archive").rglob("*") if p.is_file()]) == 3
