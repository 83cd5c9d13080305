"""The bulk endpoint and the CSV exports through the client: thin views over the services."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

from django.contrib.auth.models import User
from django.test import Client

from jobs.models import Provider, Video
from tests.conftest import Simulator, drive
from tests.helpers import import_by_id


def clip(provider: Provider, n: int, owner: User | None = None, **fields: object) -> Video:
    values: dict[str, object] = {
        "provider": provider, "owner": owner, "prompt": f"clip {n}", "model": "sora-2",
        "size": "720x1280", "seconds": "4", "status": Video.Status.COMPLETED, "progress": 100,
        "submission": Video.Submission.SUBMITTED, "asset_state": Video.Assets.NONE, **fields,
    }  # fmt: skip
    return Video.objects.create(**values)


def body(response: Any) -> bytes:
    """A streamed answer, read to its end."""
    return b"".join(response.streaming_content)


def messages_of(client: Client, path: str = "/") -> str:
    return client.get(path).content.decode()


def test_the_list_has_a_checkbox_per_row_and_card_and_the_bulk_bar(
    alice_client: Client, alice: User, provider: Provider
) -> None:
    video = clip(provider, 1)
    table = alice_client.get("/?status=completed").content.decode()
    assert '<form id="bulk"' in table
    assert f'name="ids" value="{video.pk}" form="bulk" aria-label="Select #{video.pk}"' in table
    assert 'href="/export.csv?status=completed" data-export' in table
    gallery = alice_client.get("/?view=gallery").content.decode()
    assert f'value="{video.pk}" form="bulk"> Select #{video.pk}' in gallery
    # the polled partial carries the checkboxes, never the bar (a tick must not reset it)
    tick = alice_client.get("/", headers={"HX-Request": "true"}).content.decode()
    assert 'form="bulk"' in tick and '<form id="bulk"' not in tick


def test_the_zip_download_streams_with_its_length_and_readable_names(
    alice_client: Client, provider: Provider, simulator: Simulator
) -> None:
    videos = [import_by_id(provider=provider, video_id=r["id"])[0] for r in simulator.seed(2)]
    drive(lambda: all(Video.objects.get(pk=v.pk).playable for v in videos))
    response = alice_client.post("/bulk/", {"action": "zip", "ids": [v.pk for v in videos]})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="videos-')
    data = body(response)
    assert len(data) == int(response["Content-Length"])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
    assert len(names) == 6
    for video in videos:
        assert f"{video.pk}-{video.prompt.lower().split()[0]}" in " ".join(names)


def test_a_refusal_comes_back_to_the_page_in_words(alice_client: Client, db: None) -> None:
    response = alice_client.post("/bulk/", {"action": "zip", "next": "/?view=gallery"})
    assert response.status_code == 302 and response["Location"] == "/?view=gallery"
    assert "Select at least one video first." in messages_of(alice_client)
    # somewhere else is never a place to go back to
    response = alice_client.post("/bulk/", {"action": "zip", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_compare_goes_to_the_compare_page(alice_client: Client, provider: Provider) -> None:
    one, two = clip(provider, 1), clip(provider, 2)
    response = alice_client.post("/bulk/", {"action": "compare", "ids": [one.pk, two.pk]})
    assert response.status_code == 302
    assert response["Location"] == f"/compare/?ids={one.pk},{two.pk}"


def test_bulk_delete_confirms_then_says_what_was_and_was_not_deleted(
    alice_client: Client, alice: User, bob: User, provider: Provider
) -> None:
    mine, bobs = clip(provider, 1, alice), clip(provider, 2, bob)
    page = alice_client.post("/bulk/", {"action": "delete", "ids": [mine.pk, bobs.pk]})
    assert page.status_code == 200
    body = page.content.decode()
    assert "Delete 1 video?" in body and "Delete 1 for good" in body
    assert "only the person who submitted it, or staff, can delete it" in body
    assert Video.objects.count() == 2
    response = alice_client.post(
        "/bulk/",
        {"action": "delete", "confirmed": "1", "ids": [mine.pk, bobs.pk], "next": "/"},
    )
    assert response.status_code == 302
    assert list(Video.objects.all()) == [bobs]
    shown = messages_of(alice_client)
    assert f"Deleted 1 video (#{mine.pk}). Not deleted: #{bobs.pk}" in shown


def test_the_table_export_uses_the_tables_filters(
    alice_client: Client, alice: User, bob: User, provider: Provider
) -> None:
    clip(provider, 1, alice, prompt="=cmd|' /C calc'!A0")
    clip(provider, 2, bob, prompt="a fox")
    clip(provider, 3, alice, prompt="a failed fox", status=Video.Status.FAILED, progress=3)
    response = alice_client.get("/export.csv?mine=1&status=completed&page=3")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="videos-')
    rows = list(csv.reader(io.StringIO(body(response).decode())))
    assert [r[14] for r in rows[1:]] == ["'=cmd|' /C calc'!A0"]  # the page number is ignored
    searched = alice_client.get(
        "/export.csv?q=fox%00&sort=oldest"
    )  # NUL: dropped, as the table does
    rows = list(csv.reader(io.StringIO(body(searched).decode())))
    assert [r[14] for r in rows[1:]] == ["a fox", "a failed fox"]


def test_the_usage_export_is_for_the_chosen_month(alice_client: Client, alice: User) -> None:
    response = alice_client.get("/usage/export.csv?month=2025-02")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="usage-2025-02.csv"'
    text = body(response).decode()
    assert text.splitlines()[-1] == "total,2025-02,,,,0.00"
    usage = alice_client.get("/usage/?month=2025-02").content.decode()
    assert 'href="/usage/export.csv?month=2025-02"' in usage
