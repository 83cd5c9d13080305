"""Posters and spritesheets made here from an MP4 (jobs/lib/previews.py), on real clips from the
simulator's encoder: the right frames, the grid, the caps, and plain words for a bad file."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from PIL import Image

from jobs.lib import media_check, previews
from simulator import media


def clip(tmp_path: Path, seconds: int, *, size: str = "320x180", fps: int = 6) -> Path:
    path = tmp_path / f"clip-{seconds}.mp4"
    media.write_video(path, media.Picture("a lighthouse at dusk", size, seconds, fps=fps))
    return path


def nearest(image: Image.Image, frames: list[Image.Image]) -> int:
    """The index of the frame `image` is closest to (lossy codecs: never exactly equal)."""
    return min(range(len(frames)), key=lambda i: _difference(image, frames[i]))


def test_the_poster_is_the_middle_frame_at_full_size(tmp_path: Path) -> None:
    mp4 = clip(tmp_path, 4)
    poster = tmp_path / "poster.part"
    previews.write_poster(mp4, poster)
    assert media_check.check_image(poster) is None
    with Image.open(poster) as image:
        assert image.format == "WEBP" and image.size == (320, 180)
        made = image.convert("RGB")
    # The simulator's own poster is its middle frame (12 of 24): ours is that one.
    picture = media.Picture("a lighthouse at dusk", "320x180", 4, fps=6)
    assert nearest(made, [picture.rgb_frame(i) for i in range(24)]) == 12


def test_the_spritesheet_has_a_tile_a_second_at_a_quarter_scale(tmp_path: Path) -> None:
    mp4 = clip(tmp_path, 6)
    sheet = tmp_path / "sheet.part"
    grid = previews.write_spritesheet(mp4, sheet)
    assert grid == {"columns": 4, "rows": 2, "frames": 6}
    with Image.open(sheet) as image:
        assert image.format == "JPEG" and image.size == (4 * 80, 2 * 45)
        made = image.convert("RGB")
    picture = media.Picture("a lighthouse at dusk", "320x180", 6, fps=6)
    frames = [picture.rgb_frame(i).resize((80, 45)) for i in range(36)]
    for second in range(6):
        x, y = (second % 4) * 80, (second // 4) * 45
        assert nearest(made.crop((x, y, x + 80, y + 45)), frames) == second * 6, f"tile {second}"
    # The two unused tiles of the last row stay black.
    assert max(made.crop((2 * 80, 45, 4 * 80, 90)).convert("L").tobytes()) < 20


def test_a_long_clip_gets_at_most_max_tiles_spread_over_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(previews, "MAX_TILES", 5)
    mp4 = clip(tmp_path, 20, size="64x36", fps=2)
    grid = previews.write_spritesheet(mp4, tmp_path / "sheet.part")
    assert grid == {"columns": 4, "rows": 2, "frames": 5}
    assert previews.tile_times(20.0) == [0.0, 4.0, 8.0, 12.0, 16.0]
    assert previews.tile_times(4.0) == [0.0, 1.0, 2.0, 3.0]
    assert previews.tile_times(0.0) == [0.0]


def test_decoding_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the decode budget the remaining tiles repeat the last one instead of decoding."""
    monkeypatch.setattr(previews, "MAX_DECODED", 10)
    decoded = 0
    real_decode = av.container.InputContainer.decode

    def counting(self: av.container.InputContainer, *args: object, **kwargs: object) -> object:
        nonlocal decoded
        for frame in real_decode(self, *args, **kwargs):
            decoded += 1
            yield frame

    monkeypatch.setattr(av.container.InputContainer, "decode", counting)
    grid = previews.write_spritesheet(clip(tmp_path, 8), tmp_path / "sheet.part")
    assert grid["frames"] == 8
    assert 0 < decoded <= 10 + 1  # the budget, and at most one frame read past a tile


def test_the_grid_of_a_downloaded_sheet_is_read_off_its_size(tmp_path: Path) -> None:
    picture = media.Picture("a lighthouse at dusk", "720x1280", 12, fps=1)
    media.write_spritesheet(tmp_path / "sheet.jpg", picture)
    media.write_thumbnail(tmp_path / "poster.webp", picture)
    assert previews.grid_of(tmp_path / "sheet.jpg", tmp_path / "poster.webp", "12") == {
        "columns": 4, "rows": 3, "frames": 12,
    }  # fmt: skip
    # Without the clip's length it is only a guess, so nothing is recorded.
    assert previews.grid_of(tmp_path / "sheet.jpg", tmp_path / "poster.webp", "") is None
    assert previews.grid_of(tmp_path / "sheet.jpg", tmp_path / "missing.webp", "12") is None
    assert previews.read_grid((1000, 1000), 1.0, 7) == {"columns": 3, "rows": 3, "frames": 7}
    assert previews.read_grid((100, 5000), 1.0, 7) is None  # no grid of square tiles fits


def test_a_file_that_is_not_a_video_fails_in_words(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    with pytest.raises(previews.PreviewFailed, match="^the video does not open"):
        previews.write_poster(junk, tmp_path / "poster.part")
    text = tmp_path / "text.mp4"
    text.write_text("not a video at all\n" * 20)
    with pytest.raises(previews.PreviewFailed):
        previews.write_spritesheet(text, tmp_path / "sheet.part")
    assert previews.looks_like_mp4(clip(tmp_path, 4)) and not previews.looks_like_mp4(text)


def _difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0-255."""
    pixels_a, pixels_b = a.convert("RGB").tobytes(), b.convert("RGB").tobytes()
    assert len(pixels_a) == len(pixels_b)
    return sum(abs(x - y) for x, y in zip(pixels_a, pixels_b, strict=True)) / len(pixels_a)
