"""Download names: which video a stored file belongs to, and what it is called when saved."""

from __future__ import annotations

import pytest

from jobs.lib.names import archived_pk, download_name


@pytest.mark.parametrize(
    ("stored", "pk"),
    [
        ("archive/12/video.mp4", 12),  # archived before attempts had folders of their own
        ("archive/12/3f9a0c1b2d4e/thumbnail.webp", 12),
        ("archive/7/0123456789ab/spritesheet.jpg", 7),
        ("archive/12/../13/video.mp4", None),
        ("references/2026/12/reference.png", None),
        ("archive/12/NOT-HEX/video.mp4", None),
    ],
)
def test_a_stored_file_names_its_video(stored: str, pk: int | None) -> None:
    assert archived_pk(stored) == pk


def test_the_name_carries_the_id_the_prompt_and_the_variant() -> None:
    stored = "archive/12/3f9a0c1b2d4e/thumbnail.webp"
    assert download_name(12, "A fox in the snow!", stored) == "12-a-fox-in-the-snow-thumbnail.webp"
    assert download_name(12, "A fox", "archive/12/3f9a0c1b2d4e/video.mp4") == "12-a-fox.mp4"
