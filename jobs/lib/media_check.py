"""Is a downloaded file what it claims to be? Pure checks, no Django, one sentence per problem.

Each check returns None when the file is fine, or a short sentence in words saying what is
wrong ("the MP4 has no moov box"), for the row's `last_error` and for `verify_archives`.
The archiver runs them before a file counts as archived; `verify_archives` runs them again on
what is stored.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import av
from PIL import Image, UnidentifiedImageError

# A box's header: 4-byte size, 4-byte type; size 1 means a 64-bit size follows, 0 means the box
# runs to the end of the file (ISO/IEC 14496-12, 4.2).
_HEADER = struct.Struct(">I4s")
_LARGESIZE = struct.Struct(">Q")
# Enough for any real MP4 (even fragmented ones have a few boxes per second of video); a file
# of millions of tiny boxes is not one we made sense of, and walking it would take long.
MAX_BOXES = 1_000_000


def count(n: int) -> str:
    """1234567 -> '1,234,567': the sentences are for people."""
    return f"{n:,}"


def check_length(written: int, expected: int | None) -> str | None:
    """The bytes we stored against the provider's announced total (Content-Length/-Range)."""
    if expected is None or written == expected:
        return None
    return f"the download was {count(written)} bytes but the provider announced {count(expected)}"


def check_mp4_boxes(path: Path) -> str | None:
    """Walk the top-level ISO-BMFF boxes: their sizes must add up to exactly the file's length,
    and an `ftyp` and a `moov` (the index a player needs) must be among them.

    Reads only the box headers (seeking over the payloads), so a 2 GiB file costs a few reads.
    """
    total = path.stat().st_size
    if total == 0:
        return "the MP4 is empty (0 bytes)"
    seen: set[bytes] = set()
    offset = 0
    with path.open("rb") as f:
        for _ in range(MAX_BOXES):
            if offset == total:
                break
            if total - offset < _HEADER.size:
                return (
                    f"the MP4 has {count(total - offset)} stray bytes after its last box "
                    f"(at byte {count(offset)})"
                )
            f.seek(offset)
            size, raw_type = _HEADER.unpack(f.read(_HEADER.size))
            name = _box_name(raw_type)
            if name is None:
                return f"the MP4 has an unreadable box header at byte {count(offset)}"
            header = _HEADER.size
            if size == 1:
                if total - offset < header + _LARGESIZE.size:
                    return f"the MP4 ends inside the header of its {name} box"
                (size,) = _LARGESIZE.unpack(f.read(_LARGESIZE.size))
                header += _LARGESIZE.size
            elif size == 0:
                size = total - offset
            if size < header:
                return (
                    f"the MP4's {name} box at byte {count(offset)} claims an impossible size "
                    f"of {count(size)} bytes"
                )
            seen.add(raw_type)
            if offset + size > total:
                return (
                    f"the MP4 ends inside its {name} box: {count(total - offset)} of "
                    f"{count(size)} bytes"
                )
            offset += size
        else:
            return f"the MP4 has more than {count(MAX_BOXES)} top-level boxes"
    if b"ftyp" not in seen:
        return "the MP4 has no ftyp box (it does not start like an MP4 file)"
    if b"moov" not in seen:
        return "the MP4 has no moov box (the index a player needs)"
    return None


def _box_name(raw: bytes) -> str | None:
    """A box type as text; None when it is not four printable characters (not a box at all)."""
    text = raw.decode("latin-1")
    return text if all(" " <= c <= "~" or c == "©" for c in text) else None


def check_mp4_decodes(path: Path) -> str | None:
    """Open the file with FFmpeg (PyAV) and decode its first video frame."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "the MP4 has no video stream"
            for _frame in container.decode(video=0):
                return None
            return "the MP4's video stream has no frame that decodes"
    except (av.FFmpegError, OSError, ValueError) as exc:  # PyAV raises all three for bad input
        return f"the MP4 does not decode: {_reason(exc)}"


def check_mp4(path: Path) -> str | None:
    """Structurally whole (the box walk), then at least one frame decodes."""
    return check_mp4_boxes(path) or check_mp4_decodes(path)


def check_image(path: Path) -> str | None:
    """Pillow opens it, `verify()` walks its structure, and `load()` decodes every pixel.

    `verify()` alone passes a JPEG cut short (it stops at the first scan); `load()` fails on one
    because `ImageFile.LOAD_TRUNCATED_IMAGES` is left at its default, False.
    """
    fmt = "image"
    try:
        with Image.open(path) as image:
            fmt = image.format or fmt
            image.verify()
        with Image.open(path) as image:  # verify() leaves the image unusable: open it again
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # UnidentifiedImageError and "image file is truncated" are OSErrors; a broken chunk
        # table is a SyntaxError in Pillow.
        if isinstance(exc, UnidentifiedImageError):
            return "the file is not an image in any format Pillow knows"
        return f"the {fmt} file does not open: {_reason(exc)}"
    return None


def _reason(exc: BaseException) -> str:
    # FFmpeg's and the OS's own words, without "[Errno 1094995529]" and the C function's name.
    text = str(getattr(exc, "strerror", None) or exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


# Which check each variant gets (the archive's variants: video, thumbnail, spritesheet).
CHECKS: dict[str, Callable[[Path], str | None]] = {
    "video": check_mp4,
    "thumbnail": check_image,
    "spritesheet": check_image,
}


def check_file(variant: str, path: Path, *, expected: int | None = None) -> str | None:
    """Every check for one stored variant: length first (cheapest, and it explains the rest)."""
    return check_length(path.stat().st_size, expected) or CHECKS[variant](path)
