"""Posters and spritesheets made here from an archived MP4, for providers that do not serve them.

Pure (PyAV and Pillow, no Django). The poster is the middle frame at full size, as WebP; the
spritesheet is one tile per clip second at 1/4 scale, SPRITE_COLUMNS tiles a row, as JPEG (the
same layout the simulator serves, so the gallery's scrubbing reads both alike). Bounded: only
the frames needed are decoded (a seek to the keyframe before each tile when it is far ahead,
at most MAX_DECODED_PER_TILE frames after it, MAX_DECODED in all), at most MAX_TILES tiles,
and a frame larger than MAX_SIDE on a side is refused rather than decoded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.video.stream
from PIL import Image

SPRITE_COLUMNS = 4
SPRITE_SCALE = 4  # each tile is 1/4 of the frame in both directions
MAX_TILES = 60  # a long clip gets tiles spread evenly over it, never a sheet of thousands
MAX_SIDE = 8192  # pixels: larger than any video model makes; refuse rather than decode
MAX_DECODED_PER_TILE = 600  # frames decoded after a seek before the nearest one is taken
MAX_DECODED = 6000  # frames decoded in all; after that the remaining tiles repeat the last one
SEEK_AHEAD = 2.0  # seconds: a tile nearer than this is reached by decoding on, not seeking
POSTER_QUALITY = 80
SHEET_QUALITY = 80

Grid = dict[str, int]  # {"columns", "rows", "frames"}, as Video.sprite_grid stores it


class PreviewFailed(Exception):
    """The MP4 could not be turned into a poster or spritesheet; the message is a sentence."""


def make(variant: str, mp4: Path, dest: Path) -> Grid | None:
    """The archive's preview `variant` ("thumbnail" or "spritesheet") made from `mp4` at
    `dest`; the spritesheet's grid, None for the poster."""
    if variant == "thumbnail":
        write_poster(mp4, dest)
        return None
    return write_spritesheet(mp4, dest)


def looks_like_mp4(path: Path) -> bool:
    """Starts with an ISO-BMFF `ftyp` box: the video served again under an image's name (the
    LiteLLM proxy answers every variant with the MP4)."""
    with path.open("rb") as f:
        return f.read(8)[4:8] == b"ftyp"


def write_poster(mp4: Path, dest: Path) -> None:
    """The middle frame, full size, as WebP at `dest` (written in place: `dest` is temporary)."""
    with _Reader(mp4) as reader:
        (image,) = reader.images([reader.duration / 2], scale=1)
    image.save(dest, format="WEBP", quality=POSTER_QUALITY, method=0)


def write_spritesheet(mp4: Path, dest: Path, *, columns: int = SPRITE_COLUMNS) -> Grid:
    """One tile per clip second (1/4 scale), `columns` a row, as JPEG; returns the grid."""
    with _Reader(mp4) as reader:
        times = tile_times(reader.duration)
        tiles = reader.images(times, scale=SPRITE_SCALE)
    tw, th = tiles[0].size
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (tw * columns, th * rows), (0, 0, 0))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * tw, (i // columns) * th))
    sheet.save(dest, format="JPEG", quality=SHEET_QUALITY)
    return {"columns": columns, "rows": rows, "frames": len(tiles)}


def tile_times(duration: float) -> list[float]:
    """Seconds into the clip for each tile: 0, 1, 2, … (one a second), or MAX_TILES spread
    evenly over a longer clip."""
    count = min(max(1, round(duration)), MAX_TILES)
    step = duration / count if count == MAX_TILES else 1.0
    return [min(i * step, max(0.0, duration - 1e-3)) for i in range(count)]


def read_grid(sheet_size: tuple[int, int], tile_aspect: float, frames: int | None) -> Grid | None:
    """A provider's spritesheet layout read off its size, as static/js/gallery.js guesses it:
    tiles have the poster's aspect, filled row by row with `frames` tiles (one per second);
    the smallest column count whose rows come out whole and whose last row holds a tile.
    None when the frame count is unknown (the guess would be a guess) or no grid fits.
    """
    width, height = sheet_size
    if width <= 0 or height <= 0 or tile_aspect <= 0 or not frames or frames < 1:
        return None
    for columns in range(1, 65):
        rows = height * tile_aspect * columns / width
        whole = round(rows)
        if whole < 1 or abs(rows - whole) > 0.04 * whole:
            continue
        if columns * whole < frames or columns * (whole - 1) >= frames:
            continue
        return {"columns": columns, "rows": whole, "frames": frames}
    return None


def grid_of(sheet: Path, poster: Path, seconds: str) -> Grid | None:
    """A downloaded spritesheet's grid, read off its size, the poster's and the clip's length
    in seconds (one tile a second); None when they do not fit exactly one grid."""
    try:
        with Image.open(poster) as image:
            aspect = image.width / image.height
        with Image.open(sheet) as image:
            size = image.size
        frames = int(seconds)
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return read_grid(size, aspect, frames)


class _Reader:
    """One open MP4's first video stream, decoded only as far as the requested times need."""

    def __init__(self, mp4: Path) -> None:
        try:
            self.container = av.open(str(mp4))
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise PreviewFailed(f"the video does not open: {_reason(exc)}") from exc

    def __enter__(self) -> _Reader:
        try:
            if not self.container.streams.video:
                raise PreviewFailed("the video has no video stream")
            self.stream: av.video.stream.VideoStream = self.container.streams.video[0]
            width, height = self.stream.codec_context.width, self.stream.codec_context.height
            if not 0 < width <= MAX_SIDE or not 0 < height <= MAX_SIDE:
                raise PreviewFailed(f"the video's frames are {width}×{height} pixels")
            self.time_base = self.stream.time_base or Fraction(1, 90_000)
            self.start = self.stream.start_time or 0
            self.duration = self._duration()
        except BaseException:
            self.container.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.container.close()

    def _duration(self) -> float:
        if self.stream.duration:
            return float(self.stream.duration * self.time_base)
        if self.container.duration:
            return self.container.duration / av.time_base
        rate = self.stream.average_rate
        if self.stream.frames and rate:
            return float(self.stream.frames / rate)
        return 0.0  # unknown: every tile is the first frame

    def images(self, times: list[float], *, scale: int) -> list[Image.Image]:
        """The frame at (or just before) each of `times` (ascending), 1/`scale` of full size."""
        width = max(2, self.stream.codec_context.width // scale)
        height = max(2, self.stream.codec_context.height // scale)
        found: list[Image.Image] = []
        try:
            frames: Iterator[av.VideoFrame] | None = None
            position = -math.inf  # time of the last decoded frame
            last: av.VideoFrame | None = None
            budget = MAX_DECODED
            for target in times:
                if budget <= 0 and found:
                    found.append(found[-1])  # decoded enough for one preview: repeat the last
                    continue
                if frames is None or target - position > SEEK_AHEAD:
                    # Far ahead: jump to the keyframe before it instead of decoding the gap.
                    self.container.seek(
                        self.start + int(target / self.time_base), stream=self.stream
                    )
                    frames, last = self.container.decode(self.stream), None
                chosen = last
                for _ in range(min(MAX_DECODED_PER_TILE, budget)):
                    frame = next(frames, None)
                    if frame is None:
                        break
                    budget -= 1
                    position = self._time(frame)
                    if position > target + 1e-3 and chosen is not None:
                        last = frame  # past it: the previous frame is the one at `target`
                        break
                    chosen = last = frame
                if chosen is None:
                    raise PreviewFailed(f"no frame decodes at {target:.1f} s")
                found.append(chosen.reformat(width=width, height=height, format="rgb24").to_image())
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise PreviewFailed(f"the video does not decode: {_reason(exc)}") from exc
        return found

    def _time(self, frame: av.VideoFrame) -> float:
        if frame.pts is None:
            return math.inf
        return float((frame.pts - self.start) * self.time_base)


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "strerror", None) or exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
