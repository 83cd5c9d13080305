"""Reference images for create: checked before anything is recorded."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files import File
from PIL import Image, UnidentifiedImageError

REFERENCE_MAX_BYTES = 10 * 1024 * 1024
REFERENCE_MAX_MB = REFERENCE_MAX_BYTES // 1_048_576
# Pillow's name for the format -> the suffix we store it under (image_type() reads the suffix)
REFERENCE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
REFERENCE_ACCEPT = "image/jpeg,image/png,image/webp"


def check_reference_image(upload: File, size: str) -> str:
    """Verify an `input_reference` before anything is recorded; returns its proper suffix.

    The provider uses the image as the first frame, so it must be a JPEG, PNG or WebP of exactly
    the requested size; finding that out here gives a message next to the field instead of a
    rejected job a minute later.
    """
    if upload.size is not None and upload.size > REFERENCE_MAX_BYTES:
        raise ValidationError(
            {
                "input_reference": f"The image is {upload.size / 1_048_576:.1f} MB, larger "
                f"than the {REFERENCE_MAX_MB} MB limit."
            }
        )
    try:
        width, height = (int(n) for n in size.split("x"))
    except ValueError:
        raise ValidationError({"size": f"“{size}” is not a size like 1280x720."}) from None
    upload.seek(0)
    try:
        with Image.open(upload) as image:  # reads the header only: cheap even for large files
            fmt, actual = image.format, image.size
            image.verify()  # walks the file's structure without decoding the pixels
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise ValidationError(
            {"input_reference": "This file is not a readable JPEG, PNG or WebP image."}
        ) from None
    finally:
        upload.seek(0)
    if fmt not in REFERENCE_FORMATS:
        raise ValidationError(
            {"input_reference": f"The image is a {fmt} file; use a JPEG, PNG or WebP image."}
        )
    if actual != (width, height):
        raise ValidationError(
            {
                "input_reference": f"The image is {actual[0]}×{actual[1]} pixels, but a {size} "
                f"video needs exactly {width}×{height}: the image becomes the first frame. "
                "Resize or crop it, or choose the matching size."
            }
        )
    return REFERENCE_FORMATS[fmt]


def image_type(name: str) -> str:
    """The content type to send for a stored reference, from the suffix it was saved under."""
    suffix = Path(name).suffix.lower()
    return {".png": "image/png", ".webp": "image/webp"}.get(suffix, "image/jpeg")
