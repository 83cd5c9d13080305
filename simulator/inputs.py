"""Checks on what a create or remix request sends: the prompt and the input_reference image."""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

from PIL import Image, UnidentifiedImageError

from .http import Upload, choices, invalid

MAX_PROMPT = 32000
REFERENCE_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


def check_choice(
    fields: dict[str, Any],
    name: str,
    default: str,
    allowed: tuple[str, ...],
    expected: str = "a string",
) -> str:
    """One of `allowed` (a string), or `default` when the field is absent or JSON null."""
    value = fields.get(name)
    value = default if value is None else value  # JSON null = not given
    if not isinstance(value, str):
        raise invalid(name, f"Invalid type for '{name}': expected {expected}.", "invalid_type")
    if value not in allowed:
        raise invalid(name, f"Invalid value: '{value}'. Supported values are: {choices(allowed)}.")
    return value


def check_reference(
    fields: dict[str, Any], files: dict[str, Upload], size: str
) -> tuple[bytes, str] | None:
    """Validate input_reference; returns (image bytes, extension) to store, if any.

    An `{"image_url": "https://..."}` or `{"file_id": ...}` reference cannot be fetched
    offline: it is accepted as given and the clip is drawn without it.
    """
    upload = files.get("input_reference")
    if upload is not None:
        return check_image(upload.data, size)
    value = fields.get("input_reference")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise invalid(
                "input_reference",
                "input_reference must be a file upload or an object with image_url or file_id.",
            ) from None
    if not isinstance(value, dict):
        raise invalid(
            "input_reference",
            "input_reference must be a file upload or an object with image_url or file_id.",
            "invalid_type",
        )
    given = [k for k in ("image_url", "file_id") if value.get(k)]
    extra = [k for k in value if k not in ("image_url", "file_id")]
    if len(given) != 1 or extra:
        raise invalid(
            "input_reference",
            "input_reference must have exactly one of 'image_url' or 'file_id'.",
        )
    url = value.get("image_url")
    if isinstance(url, str) and url.startswith("data:"):
        header, _, payload = url.partition(",")
        if ";base64" not in header:
            raise invalid("input_reference", "image_url data URLs must be base64.")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise invalid("input_reference", "image_url is not valid base64.") from None
        return check_image(data, size)
    if not isinstance(value[given[0]], str):
        raise invalid("input_reference", f"'{given[0]}' must be a string.", "invalid_type")
    return None


def check_prompt(value: object) -> str:
    if value is None:
        raise invalid(
            "prompt", "Missing required parameter: 'prompt'.", "missing_required_parameter"
        )
    if not isinstance(value, str):
        raise invalid("prompt", "Invalid type for 'prompt': expected a string.", "invalid_type")
    if not value.strip():
        raise invalid(
            "prompt",
            "Invalid 'prompt': string too short. Expected a string with "
            "minimum length 1, but got an empty string instead.",
            "string_below_min_length",
        )
    if len(value) > MAX_PROMPT:
        raise invalid(
            "prompt",
            "Invalid 'prompt': string too long. Expected a string with "
            f"maximum length {MAX_PROMPT}, but got a string with length "
            f"{len(value)} instead.",
            "string_above_max_length",
        )
    return value


def check_image(data: bytes, size: str) -> tuple[bytes, str]:
    width, height = (int(n) for n in size.split("x"))
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, actual = img.format, img.size
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise invalid(
            "input_reference",
            "Invalid input_reference: expected an image/jpeg, image/png or image/webp file.",
            "invalid_image",
        ) from None
    if fmt not in REFERENCE_FORMATS:
        raise invalid(
            "input_reference",
            f"Invalid input_reference: unsupported image format "
            f"{fmt}; expected image/jpeg, image/png or image/webp.",
            "invalid_image_format",
        )
    if actual != (width, height):
        raise invalid(
            "input_reference",
            "Inpaint image must match the requested width and "
            f"height (got {actual[0]}x{actual[1]}, requested {size}).",
            "invalid_image_size",
        )
    return data, REFERENCE_FORMATS[fmt]
