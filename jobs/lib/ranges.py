"""HTTP Range answers for archived files, so the player can seek."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from django.http import FileResponse, HttpResponse
from django.http.response import HttpResponseBase

RANGE_RE = re.compile(r"^bytes=(\d{0,20})-(\d{0,20})$")  # 20 digits: any real file size


def file_response(path: Path, range_header: str) -> HttpResponseBase:
    """The whole file, or the one byte range asked for (206), or 416 when it is outside."""
    size = path.stat().st_size
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    match = RANGE_RE.match(range_header)
    if not match or match.groups() == ("", ""):
        whole = FileResponse(path.open("rb"), content_type=content_type)
        whole["Accept-Ranges"] = "bytes"
        return whole
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    else:  # "bytes=-N": the last N bytes
        start, end = max(size - int(last), 0), size - 1
    if start >= size or start > end:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    handle = path.open("rb")
    handle.seek(start)
    part = FileResponse(_limited(handle, end - start + 1), status=206, content_type=content_type)
    part["Content-Length"] = str(end - start + 1)
    part["Content-Range"] = f"bytes {start}-{end}/{size}"
    part["Accept-Ranges"] = "bytes"
    return part


def _limited(handle: BinaryIO, remaining: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    with handle:
        while remaining > 0:
            data = handle.read(min(chunk, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
