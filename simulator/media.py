"""Fake media for finished jobs: a real H.264/AAC MP4, a WebP thumbnail and a JPEG spritesheet.

Everything is a pure function of (prompt, size, seconds, optional reference image), so a file
that is lost or deleted can be regenerated identically. The picture is cheap on purpose: a
static background (colour from a hash of the prompt, the prompt's first words) is drawn once
and converted to YUV once; each frame then only patches a moving bar and a frame counter into
copies of the YUV planes, so no per-frame colour conversion of the full picture is needed.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import os
import queue
import struct
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

from .quirks import file_name

FPS = 24
AUDIO_RATE = 48000
# 375 Hz divides 48 kHz into 128-sample periods, so every 1024-sample AAC frame is identical
# and the tone is computed once.
TONE_HZ = 375
TONE_AMPLITUDE = 0.05
SPRITE_COLUMNS = 4
SPRITE_SCALE = 4  # each spritesheet tile is 1/4 of the video size in both directions

FREE_BOX_HEADER = 8


def parse_size(size: str) -> tuple[int, int]:
    width, height = size.split("x")
    return int(width), int(height)


def prompt_colour(prompt: str) -> tuple[int, int, int]:
    """A saturated, mid-dark colour derived from the prompt so different jobs look different."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    hue = digest[0] / 255
    sat = 0.45 + digest[1] / 255 * 0.35
    val = 0.35 + digest[2] / 255 * 0.3
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return int(r * 255), int(g * 255), int(b * 255)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


class Picture:
    """Draws the frames of one clip."""

    def __init__(
        self,
        prompt: str,
        size: str,
        seconds: int,
        label: str = "",
        reference: Path | None = None,
        fps: int = FPS,
    ) -> None:
        self.prompt = prompt
        self.width, self.height = parse_size(size)
        self.seconds = seconds
        self.fps = fps
        self.frames = seconds * fps
        self.label = label
        self.colour = prompt_colour(prompt)
        # Geometry of the animated parts, shared by the RGB and the YUV paths (even numbers,
        # so rectangles line up with the 2x2 chroma blocks of yuv420p).
        unit = min(self.width, self.height)
        self.bar_h = max(8, unit // 40) & ~1
        self.bar_y = (self.height - self.bar_h * 3) & ~1
        self.marker_w = max(8, unit // 30) & ~1
        self.marker_top = (self.bar_y - unit // 6) & ~1  # a block riding on the progress bar
        self.counter_font = _font(max(14, unit // 22))
        self.counter_box = (
            unit // 20 & ~1,
            unit // 20 & ~1,
            (unit // 20 + unit // 2) & ~1,
            (unit // 20 + unit // 13) & ~1,
        )
        self.base = self._draw_base(reference)

    def _draw_base(self, reference: Path | None) -> Image.Image:
        if reference is not None and reference.exists():
            with Image.open(reference) as ref:
                img = ref.convert("RGB").resize((self.width, self.height))
        else:
            img = Image.new("RGB", (self.width, self.height), self.colour)
            draw = ImageDraw.Draw(img)
            # A lighter diagonal band gives the encoder something that is not flat.
            light = tuple(min(255, c + 40) for c in self.colour)
            draw.polygon(
                [
                    (0, self.height * 0.55),
                    (self.width, self.height * 0.35),
                    (self.width, self.height * 0.5),
                    (0, self.height * 0.7),
                ],
                fill=light,
            )
        draw = ImageDraw.Draw(img)
        unit = min(self.width, self.height)
        margin = unit // 20
        font = _font(max(16, unit // 14))
        y = self.height // 4
        for line in _wrap(self.prompt.split()[:16], font, self.width - 2 * margin)[:4]:
            draw.text((margin + 2, y + 2), line, font=font, fill=(0, 0, 0))
            draw.text((margin, y), line, font=font, fill=(255, 255, 255))
            y += int(unit / 14 * 1.3)
        if self.label:
            small = _font(max(12, unit // 30))
            draw.text(
                (margin, self.marker_top - self.bar_h * 3),
                self.label,
                font=small,
                fill=(230, 230, 230),
            )
        # The counter's black box is static: drawing it here keeps it out of the frame loop.
        draw.rectangle(
            (
                self.counter_box[0],
                self.counter_box[1],
                self.counter_box[2] - 1,
                self.counter_box[3] - 1,
            ),
            fill=(0, 0, 0),
        )
        return img

    def time_of(self, index: int) -> float:
        return index / self.fps

    def _counter_image(self, index: int) -> Image.Image:
        """White-on-black time and frame number (greyscale: only the Y plane changes)."""
        x0, y0, x1, y1 = self.counter_box
        tile = Image.new("L", (x1 - x0, y1 - y0), 0)
        text = f"{self.time_of(index):5.2f}s  #{index + 1:03d}/{self.frames:03d}"
        ImageDraw.Draw(tile).text((6, 2), text, font=self.counter_font, fill=255)
        return tile

    def _marker_x(self, index: int) -> int:
        progress = index / max(1, self.frames - 1)
        return int(progress * (self.width - self.marker_w)) & ~1

    def rgb_frame(self, index: int) -> Image.Image:
        """The frame as a Pillow image (thumbnail, spritesheet)."""
        img = self.base.copy()
        draw = ImageDraw.Draw(img)
        draw.rectangle((0, self.bar_y, self.width, self.bar_y + self.bar_h - 1), fill=(20, 20, 20))
        filled = int((index + 1) / self.frames * self.width)
        draw.rectangle((0, self.bar_y, filled, self.bar_y + self.bar_h - 1), fill=(255, 255, 255))
        x = self._marker_x(index)
        draw.rectangle(
            (x, self.marker_top, x + self.marker_w - 1, self.bar_y - 1), fill=(255, 64, 64)
        )
        img.paste(self._counter_image(index).convert("RGB"), self.counter_box[:2])
        return img

    def yuv_frames(self) -> Iterator[av.VideoFrame]:
        """Every frame of the clip as yuv420p, built by patching the pre-converted background."""
        w, h = self.width, self.height
        base = av.VideoFrame.from_image(self.base).reformat(format="yuv420p")
        y_plane = _plane_bytes(base, 0, w, h)
        u_plane = _plane_bytes(base, 1, w // 2, h // 2)
        v_plane = _plane_bytes(base, 2, w // 2, h // 2)
        white, dark, red = _yuv(255, 255, 255), _yuv(20, 20, 20), _yuv(255, 64, 64)
        x0, y0, x1, y1 = self.counter_box
        tw, th = x1 - x0, y1 - y0
        studio = [16 + v * 219 // 255 for v in range(256)]  # full -> limited range luma
        for index in range(self.frames):
            planes = [bytearray(y_plane), bytearray(u_plane), bytearray(v_plane)]
            filled = int((index + 1) / self.frames * w) & ~1
            _fill(planes, w, 0, self.bar_y, w, self.bar_y + self.bar_h, dark)
            _fill(planes, w, 0, self.bar_y, filled, self.bar_y + self.bar_h, white)
            x = self._marker_x(index)
            _fill(planes, w, x, self.marker_top, x + self.marker_w, self.bar_y, red)
            counter = self._counter_image(index).point(studio).tobytes()
            y_data = planes[0]
            for row in range(th):
                start = (y0 + row) * w + x0
                y_data[start : start + tw] = counter[row * tw : (row + 1) * tw]
            frame = av.VideoFrame(w, h, "yuv420p")
            for i, (plane, data) in enumerate(zip(frame.planes, planes, strict=True)):
                _set_plane(plane, data, w if i == 0 else w // 2)
            frame.pts = index
            frame.time_base = Fraction(1, self.fps)
            yield frame


def _wrap(
    words: list[str], font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: int
) -> list[str]:
    """Greedy word wrap by rendered width (long single words are simply clipped)."""
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if current and font.getlength(candidate) > max_width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _yuv(r: int, g: int, b: int) -> tuple[int, int, int]:
    """BT.601 limited range, which is what swscale produces for yuv420p by default."""
    y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256
    u = 128 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256
    v = 128 + (112.439 * r - 94.154 * g - 18.285 * b) / 256
    return round(y), round(u), round(v)


def _plane_bytes(frame: av.VideoFrame, index: int, width: int, height: int) -> bytes:
    """Plane data without the line padding that libav may add (line_size >= width)."""
    plane = frame.planes[index]
    raw = bytes(plane)
    stride = plane.line_size
    if stride == width:
        return raw[: width * height]
    return b"".join(raw[row * stride : row * stride + width] for row in range(height))


def _set_plane(plane: av.video.plane.VideoPlane, data: bytearray, width: int) -> None:
    stride = plane.line_size
    if stride == width:
        plane.update(bytes(data))
        return
    rows = len(data) // width
    padded = bytearray(stride * rows)
    for row in range(rows):
        padded[row * stride : row * stride + width] = data[row * width : (row + 1) * width]
    plane.update(bytes(padded))


def _fill(
    planes: list[bytearray],
    width: int,
    x0: int,
    y0: int,
    x1: int,
    y1: int,
    colour: tuple[int, int, int],
) -> None:
    """Fill an even-aligned rectangle in all three planes (slice assignment per row: fast)."""
    if x1 <= x0 or y1 <= y0:
        return
    span = bytes([colour[0]]) * (x1 - x0)
    for row in range(y0, y1):
        planes[0][row * width + x0 : row * width + x1] = span
    cw = width // 2
    cx0, cx1 = x0 // 2, x1 // 2
    u_span, v_span = bytes([colour[1]]) * (cx1 - cx0), bytes([colour[2]]) * (cx1 - cx0)
    for row in range(y0 // 2, y1 // 2):
        planes[1][row * cw + cx0 : row * cw + cx1] = u_span
        planes[2][row * cw + cx0 : row * cw + cx1] = v_span


def _tone_frame_bytes() -> bytes:
    samples = [
        TONE_AMPLITUDE * math.sin(2 * math.pi * TONE_HZ * i / AUDIO_RATE) for i in range(1024)
    ]
    return struct.pack(f"<{len(samples)}f", *samples)


def _prefetched(frames: Iterator[av.VideoFrame], depth: int = 8) -> Iterator[av.VideoFrame]:
    """Draw frames in a helper thread while the caller encodes.

    libx264 releases the GIL, so drawing (Python) and encoding (C) overlap: this roughly
    halves the time for large clips on two cores.
    """
    handoff: queue.Queue[av.VideoFrame | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        handoff.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(None)
        except BaseException as exc:  # re-raised in the encoding thread
            handoff.put(exc)

    worker = threading.Thread(target=produce, name="frames", daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # the encoder failed or stopped early: let the producer end
        worker.join(timeout=5)


def write_video(path: Path, picture: Picture) -> None:
    """Encode the clip to `path` (written to a temp name first so readers never see half a file)."""
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=picture.fps)
        video.width, video.height = picture.width, picture.height
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "ultrafast", "tune": "stillimage", "crf": "28"}
        audio = container.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "mono"
        tone = _tone_frame_bytes()
        total_samples = picture.seconds * AUDIO_RATE
        audio_pts = 0
        for frame in _prefetched(picture.yuv_frames()):
            container.mux(video.encode(frame))
            # Keep audio interleaved with video so the file streams well.
            pts = frame.pts or 0  # yuv_frames() numbers every frame; the stubs allow None
            target = min(total_samples, int((pts + 1) / picture.fps * AUDIO_RATE))
            while audio_pts + 1024 <= target or (audio_pts < target == total_samples):
                n = min(1024, total_samples - audio_pts)
                aframe = av.AudioFrame(format="flt", layout="mono", samples=n)
                aframe.planes[0].update(tone[: n * 4])
                aframe.sample_rate = AUDIO_RATE
                aframe.pts = audio_pts
                aframe.time_base = Fraction(1, AUDIO_RATE)
                container.mux(audio.encode(aframe))
                audio_pts += n
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    os.replace(tmp, path)


def write_thumbnail(path: Path, picture: Picture) -> None:
    """Full-size WebP of the middle frame."""
    tmp = path.with_name(path.name + ".part")
    picture.rgb_frame(picture.frames // 2).save(tmp, format="WEBP", quality=80, method=0)
    os.replace(tmp, path)


def write_spritesheet(path: Path, picture: Picture) -> None:
    """JPEG grid: one tile per clip second (1/4 scale), SPRITE_COLUMNS tiles per row."""
    tw, th = picture.width // SPRITE_SCALE, picture.height // SPRITE_SCALE
    count = picture.seconds
    rows = math.ceil(count / SPRITE_COLUMNS)
    sheet = Image.new("RGB", (tw * SPRITE_COLUMNS, th * rows), (0, 0, 0))
    for i in range(count):
        index = min(picture.frames - 1, i * picture.fps)
        tile = picture.rgb_frame(index).resize((tw, th), Image.Resampling.BILINEAR)
        sheet.paste(tile, ((i % SPRITE_COLUMNS) * tw, (i // SPRITE_COLUMNS) * th))
    tmp = path.with_name(path.name + ".part")
    sheet.save(tmp, format="JPEG", quality=80)
    os.replace(tmp, path)


def free_box_header(total: int) -> bytes:
    """Header of an MP4 `free` box of `total` bytes (header included); players skip it."""
    if total < 2**32:
        return struct.pack(">I4s", total, b"free")
    return struct.pack(">I4sQ", 1, b"free", total)


def padding_bytes(mb: float) -> int:
    """Size of the free box for --pad-video-mb (0 when off)."""
    total = int(mb * 1024 * 1024)
    return total if total >= 16 else 0


VARIANTS: dict[str, tuple[str, str]] = {
    "video": ("video.mp4", "video/mp4"),
    "thumbnail": ("thumbnail.webp", "image/webp"),
    "spritesheet": ("spritesheet.jpg", "image/jpeg"),
}
_WRITERS = {"video": write_video, "thumbnail": write_thumbnail, "spritesheet": write_spritesheet}


class MediaLibrary:
    """Generates assets lazily on first request and caches them under the data dir.

    One lock per (video, variant): concurrent first downloads wait for a single generation
    instead of encoding the same clip several times.
    """

    def __init__(self, media_dir: Path) -> None:
        self.media_dir = media_dir
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.generated: dict[str, float] = {}  # last generation time per variant (for --verbose)

    def _lock_for(self, video_id: str, variant: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((video_id, variant), threading.Lock())

    def forget(self) -> None:
        with self._guard:
            self._locks.clear()

    def ensure(
        self,
        video_id: str,
        variant: str,
        *,
        prompt: str,
        size: str,
        seconds: int,
        label: str,
        reference: Path | None,
        fps: int = FPS,
    ) -> Path:
        name, _ = VARIANTS[variant]
        path = self.media_dir / file_name(video_id) / name
        if path.exists():
            return path
        with self._lock_for(video_id, variant):
            if path.exists():  # generated by the request we waited for
                return path
            path.parent.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            _WRITERS[variant](path, Picture(prompt, size, seconds, label, reference, fps))
            self.generated[variant] = time.perf_counter() - started
        return path
