"""Bulk actions (issue 14, point 4): one dispatcher, a service per action; the zip streams."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from jobs.lib.names import download_name
from jobs.models import Collection, Provider, Video
from jobs.services import bulk
from jobs.services.collections import create_collection
from tests.conftest import Simulator, drive
from tests.helpers import import_by_id


def archived(provider: Provider, simulator: Simulator, count: int) -> list[Video]:
    """Completed videos imported and archived here, as `make run` seeds them."""
    videos = [import_by_id(provider=provider, video_id=r["id"])[0] for r in simulator.seed(count)]
    drive(lambda: all(Video.objects.get(pk=v.pk).playable for v in videos))
    return [Video.objects.get(pk=v.pk) for v in videos]


def made(provider: Provider, owner: User | None, n: int, **fields: object) -> Video:
    values: dict[str, object] = {
        "provider": provider,
        "owner": owner,
        "prompt": f"clip {n}",
        "model": "sora-2",
        "size": "720x1280",
        "seconds": "4",
        "status": Video.Status.COMPLETED,
        "progress": 100,
        "submission": Video.Submission.SUBMITTED,
        "asset_state": Video.Assets.NONE,
        **fields,
    }
    return Video.objects.create(**values)


def run(user: User, action: str, videos: list[Video], **kw: object) -> bulk.Outcome:
    return bulk.run(user=user, action=action, ids=[str(v.pk) for v in videos], **kw)  # type: ignore[arg-type]


def test_an_unknown_action_an_empty_and_a_too_large_selection_are_refused(
    alice: User, provider: Provider
) -> None:
    video = made(provider, alice, 1)
    with pytest.raises(ValidationError, match="Choose what to do"):
        run(alice, "explode", [video])
    with pytest.raises(ValidationError, match="Select at least one video"):
        bulk.run(user=alice, action="zip", ids=["", "x", "²"])
    too_many = [str(n) for n in range(1, bulk.MAX_SELECTED + 2)]
    with pytest.raises(ValidationError, match=f"at most {bulk.MAX_SELECTED} videos"):
        bulk.run(user=alice, action="zip", ids=too_many)
    with pytest.raises(ValidationError, match="no longer exist"):
        bulk.run(user=alice, action="zip", ids=["999999"])


def test_add_and_remove_go_to_a_collection_the_user_can_see(
    alice: User, bob: User, provider: Provider
) -> None:
    one, two = made(provider, bob, 1), made(provider, None, 2)
    mine = create_collection(user=alice, name="Picks")
    done = run(alice, "add", [one, two], collection_id=str(mine.pk))
    assert isinstance(done, bulk.Done) and done.ok
    assert done.message == "Added 2 videos to “Picks”."
    again = run(alice, "add", [one], collection_id=str(mine.pk))
    assert again.message == "Added 0 videos to “Picks”. 1 video was already in it."  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="not shared with you"):
        run(bob, "add", [one], collection_id=str(mine.pk))
    for junk in ("", "²", "9" * 30, "-1"):
        with pytest.raises(ValidationError, match="Pick a collection|not shared with you"):
            run(alice, "add", [one], collection_id=junk)
    removed = run(alice, "remove", [one], collection_id=str(mine.pk))
    assert removed.message == "Removed 1 video from “Picks”."  # type: ignore[union-attr]
    assert list(Collection.objects.get().videos.all()) == [two]


def test_compare_sends_two_to_six_videos_to_the_compare_page(
    alice: User, provider: Provider
) -> None:
    videos = [made(provider, alice, n) for n in range(7)]
    done = run(alice, "compare", videos[2:4])
    assert isinstance(done, bulk.Done)
    assert done.redirect == f"/compare/?ids={videos[2].pk},{videos[3].pk}"
    with pytest.raises(ValidationError, match="at least two"):
        run(alice, "compare", videos[:1])
    with pytest.raises(ValidationError, match="up to 6 videos"):
        run(alice, "compare", videos)


def test_delete_asks_first_then_deletes_only_what_the_user_may_manage(
    alice: User, bob: User, provider: Provider
) -> None:
    own = made(provider, alice, 1)  # never sent: nothing to delete at the provider
    bobs = made(provider, bob, 2)
    plan = run(alice, "delete", [own, bobs])
    assert isinstance(plan, bulk.DeletePlan)
    assert plan.deletable == [own]
    assert [(v.pk, why) for v, why in plan.refused] == [(bobs.pk, bulk.NOT_YOURS)]
    assert Video.objects.count() == 2  # nothing yet

    done = run(alice, "delete", [own, bobs], confirmed=True)
    assert isinstance(done, bulk.Done) and not done.ok
    assert done.message == (
        f"Deleted 1 video (#{own.pk}). Not deleted: #{bobs.pk} (only the person who submitted "
        "it, or staff, can delete it)."
    )
    assert list(Video.objects.all()) == [bobs]


def test_delete_reports_the_delete_services_own_refusal(alice: User, provider: Provider) -> None:
    running = made(
        provider, alice, 1, status=Video.Status.IN_PROGRESS, progress=40, video_id="video_r1"
    )
    done = run(alice, "delete", [running], confirmed=True)
    assert done.message == (  # type: ignore[union-attr]
        f"Not deleted: #{running.pk} (This job is still running; the provider only deletes "
        "finished jobs)."
    )
    assert Video.objects.filter(pk=running.pk).exists()


def test_retry_failed_uses_the_retry_service_once_per_job(
    alice: User, bob: User, provider: Provider
) -> None:
    failed = made(provider, alice, 1, status=Video.Status.FAILED, progress=30, video_id="v_f1")
    fine = made(provider, alice, 2, video_id="v_ok")
    bobs = made(provider, bob, 3, status=Video.Status.FAILED, progress=10, video_id="v_f3")
    done = run(alice, "retry", [failed, fine, bobs])
    retry = Video.objects.get(retry_of=failed)
    assert retry.owner == alice and retry.prompt == failed.prompt
    assert done.message == (  # type: ignore[union-attr]
        f"Retrying 1 failed job (#{failed.pk} as #{retry.pk}). Not retried: "
        f"#{fine.pk} (Only a failed job can be retried); #{bobs.pk} (Only the person who "
        "submitted it, or staff, can retry it)."
    )
    again = run(alice, "retry", [failed])
    assert again.message == f"Not retried: #{failed.pk} (already retried as #{retry.pk})."  # type: ignore[union-attr]
    assert Video.objects.filter(retry_of=failed).count() == 1


def test_the_zip_streams_in_small_chunks_and_its_entries_are_the_archived_files(
    alice: User, provider: Provider, simulator: Simulator
) -> None:
    simulator.configure(pad_video_mb=2)  # each MP4 ~2 MB: many chunks if it streams
    videos = archived(provider, simulator, 2)
    download = run(alice, "zip", videos)
    assert isinstance(download, bulk.ZipDownload) and download.count == 2

    chunks = iter(download.chunks)
    first = next(chunks)  # produced before anything else has been read
    assert 0 < len(first) < download.size
    sizes = [len(first)] + [len(c) for c in chunks]
    assert len(sizes) > 60  # 4 MB in pieces, not one buffer
    assert max(sizes) <= 64 * 1024 + 1024  # a read buffer and a header, never a whole file
    assert sum(sizes) == download.size  # the Content-Length the view sends

    body = io.BytesIO()
    for chunk in run(alice, "zip", videos).chunks:  # type: ignore[union-attr]
        body.write(chunk)
    with zipfile.ZipFile(body) as archive:
        assert archive.testzip() is None  # every CRC checks out
        expected = {}
        for video in videos:
            for field in bulk.FILE_FIELDS:
                name = getattr(video, field).name
                expected[download_name(video.pk, video.prompt, name)] = name
        assert sorted(archive.namelist()) == sorted(expected)
        for entry, stored in expected.items():
            on_disk = Path(default_storage.path(stored)).read_bytes()
            assert archive.read(entry) == on_disk
        mp4s = [n for n in archive.namelist() if n.endswith(".mp4")]
        assert all(archive.getinfo(n).file_size > 2_000_000 for n in mp4s)


def test_the_zip_has_a_limit_and_needs_archived_files(
    alice: User, provider: Provider, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending = made(provider, alice, 1, asset_state=Video.Assets.PENDING)
    with pytest.raises(ValidationError, match="None of the selected videos has archived files"):
        run(alice, "zip", [pending])
    videos = archived(provider, simulator, 2)
    monkeypatch.setattr(bulk, "ZIP_MAX_VIDEOS", 1)
    with pytest.raises(ValidationError) as exc:
        run(alice, "zip", [*videos, pending])
    assert exc.value.messages == [
        "A zip holds at most 1 videos; you selected 2 with files. Select fewer and download "
        "them in parts."
    ]


def test_a_file_lost_from_the_disk_is_left_out_not_a_broken_zip(
    alice: User, provider: Provider, simulator: Simulator
) -> None:
    (video,) = archived(provider, simulator, 1)
    Path(default_storage.path(str(video.spritesheet_file.name))).unlink()
    download = run(alice, "zip", [video])
    body = b"".join(download.chunks)  # type: ignore[union-attr]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        assert not any(n.endswith("-spritesheet.jpg") for n in archive.namelist())
        assert len(archive.namelist()) == 2
