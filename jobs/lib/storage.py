"""Where archived files live, through Django's Storage API (the `default` of settings.STORAGES):
this machine's disk under MEDIA_ROOT, or an S3-compatible bucket (django-storages' S3Storage,
ARCHIVE_STORAGE=s3). What differs between the two is decided here, and only here:

- storing a verified download (`store`): a rename on local disk, a multipart upload to a bucket
  read from the file part by part, so memory stays flat (jobs/lib/s3.py, bench/p6);
- answering a request for a file (`serve`): from disk with HTTP Range, or a redirect to a
  short-lived presigned URL that the bucket answers, Range included;
- reading a stored file (`chunks`, `local_copy`) for the zip, and for the checks that need a
  path (PyAV, the MP4 box walk).

Downloads themselves always go to a local temporary file first (MEDIA_ROOT/.partial), where they
are verified; only then are they stored.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Protocol, cast

from django.core.files import File
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.utils.cache import patch_cache_control
from django.utils.http import content_disposition_header

from jobs.lib.ranges import file_response

PARTIAL_DIR = ".partial"  # under MEDIA_ROOT: downloads in progress, never served
CHUNK = 64 * 1024
# Object storage errors come from these packages; their names are checked rather than imported,
# so that a process on local disk never loads boto3.
_CLOUD_PACKAGES = ("botocore", "boto3", "s3transfer")


def is_local() -> bool:
    """True when the archive is on this machine's disk (a storage with real paths)."""
    try:
        default_storage.path("")
    except NotImplementedError:
        return False
    return True


def local_path(name: str) -> Path | None:
    """The file behind a stored name on local disk, inside the storage's root and outside
    .partial (resolved on both sides, so neither `..` nor a relative MEDIA_ROOT gets out);
    None when the archive is not on local disk. Http404 for a name that points elsewhere."""
    if not is_local():
        return None
    root = Path(default_storage.path("")).resolve()
    full = (root / name).resolve()
    if not full.is_relative_to(root) or full.is_relative_to(root / PARTIAL_DIR):
        raise Http404
    return full


def _safe_name(name: str) -> bool:
    """A storage name a request may ask for: relative, no `..`, no NUL, not a download in
    progress. (A bucket has no `..`, but S3Storage would answer one with a 400, not a 404.)"""
    parts = PurePosixPath(name).parts
    return bool(
        parts
        and "\x00" not in name
        and "\\" not in name
        and not name.startswith("/")
        and ".." not in parts
        and parts[0] != PARTIAL_DIR
    )


class _PresignedUrls(Protocol):
    """S3Storage.url(): also takes the response headers the bucket is to send with the file."""

    def url(self, name: str, parameters: dict[str, str] | None = None) -> str: ...


class _Verified(File):
    """A verified local file handed to storage.save(): FileSystemStorage moves a file that has a
    `temporary_file_path` (a rename, no copy); S3Storage reads it part by part."""

    def __init__(self, path: Path) -> None:
        super().__init__(path.open("rb"), name=path.name)
        self._path = path

    def temporary_file_path(self) -> str:
        return str(self._path)


def store(path: Path, name: str) -> None:
    """Put the verified local file `path` at exactly `name` (the row is written with it).

    On local disk the file is renamed into place (atomic: a reader sees it whole or not at
    all); to a bucket it is uploaded, an object appearing only once the upload completes. An
    existing `name` is never overwritten: it is an error here (each archive attempt has a folder
    of its own, so it means a bug or a race, not a file to replace)."""
    with _Verified(path) as content:
        saved = default_storage.save(name, content)
    if saved != name:
        default_storage.delete(saved)
        raise FileExistsError(f"{name} is already taken in the archive's storage")
    path.unlink(missing_ok=True)  # an upload leaves the temporary behind; a rename does not


def remove_folder(folder: str) -> None:
    """Remove an archive attempt's folder once its files are gone (local disk only: a bucket
    has no folders)."""
    if is_local():
        with contextlib.suppress(OSError):
            Path(default_storage.path(folder)).rmdir()  # only if empty


def size(name: str) -> int:
    """The stored file's size in bytes; FileNotFoundError when it is missing."""
    if (path := local_path(name)) is not None and not path.is_file():
        raise FileNotFoundError(name)
    return default_storage.size(name)


def chunks(name: str, chunk: int = CHUNK) -> Iterator[bytes]:
    """The stored file's bytes, a chunk at a time, through storage.open(). An S3 object is
    fetched into a temporary file that stays in memory only up to AWS_S3_MAX_MEMORY_SIZE."""
    with default_storage.open(name, "rb") as f:
        while data := f.read(chunk):
            yield data


@contextlib.contextmanager
def local_copy(name: str, scratch: Path) -> Iterator[Path]:
    """A path to the stored file, for checks that need one: the file itself on local disk,
    else a temporary copy in `scratch`, streamed there and removed afterwards.
    FileNotFoundError when it is missing."""
    if (path := local_path(name)) is not None:
        if not path.is_file():
            raise FileNotFoundError(name)
        yield path
        return
    scratch.mkdir(parents=True, exist_ok=True)
    suffix = PurePosixPath(name).suffix
    with tempfile.NamedTemporaryFile(dir=scratch, prefix="check-", suffix=suffix + ".part") as tmp:
        for data in chunks(name):
            tmp.write(data)
        tmp.flush()
        yield Path(tmp.name)


def serve(
    name: str, range_header: str, *, filename: str | None = None, navigate: bool = False
) -> HttpResponseBase:
    """The answer to a request for a stored file that the caller has already allowed.

    Local disk: the file, with HTTP Range (206) so the player can seek. A bucket: a redirect
    to a presigned URL of AWS_QUERYSTRING_EXPIRE seconds; the bucket answers Range itself and
    the web worker is free at once. `filename` is the name a download saves under (inline, so
    the player still plays it); `navigate` (the browser opened the link as a page: the Download
    button) makes the bucket's answer an attachment, since the `download` attribute of a link
    does not reach across origins.
    """
    if not _safe_name(name):
        raise Http404
    if (path := local_path(name)) is not None:
        if not path.is_file():
            raise Http404
        response = file_response(path, range_header)
        if filename and response.status_code in (200, 206):
            disposition = content_disposition_header(as_attachment=False, filename=filename)
            if disposition:
                response["Content-Disposition"] = disposition
        return response
    parameters = {}
    if filename:
        disposition = content_disposition_header(as_attachment=navigate, filename=filename)
        if disposition:
            parameters["ResponseContentDisposition"] = disposition
    url = cast(_PresignedUrls, default_storage).url(name, parameters=parameters)
    redirect = HttpResponseRedirect(url)
    # The browser may reuse the redirect (so it also reuses the object it cached) for a third
    # of the URL's life, never past it; only this user's browser, never a shared cache.
    expire = int(getattr(default_storage, "querystring_expire", 0) or 0)
    patch_cache_control(redirect, private=True, max_age=max(expire // 3, 0))
    return redirect


def unreadable() -> str | None:
    """Why the archive's storage cannot be read at all (a bucket that is missing, refuses us or
    is unreachable), else None. A missing bucket answers each file's HEAD with a bare 404, as
    if the file were missing: ask this first, before calling files lost."""
    try:
        default_storage.listdir("")
    except FileNotFoundError:  # local disk with no MEDIA_ROOT yet: the files tell the rest
        return None
    except Exception as exc:
        if (problem := storage_problem(exc)) is None:
            raise
        return problem
    return None


def storage_problem(exc: BaseException) -> str | None:
    """Words for a failure of the object storage (boto3, botocore, s3transfer: no credentials,
    unreachable, refused), or None when `exc` is something else. Never the credentials."""
    seen: set[int] = set()
    current: BaseException | None = exc
    found = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__module__.split(".")[0] in _CLOUD_PACKAGES:
            found = found or current
            response = getattr(current, "response", None)
            if isinstance(response, dict):  # botocore's ClientError: the service said no
                code = str(response.get("Error", {}).get("Code", "")) or "an error"
                return f"the object storage answered {code[:80]}"
        current = current.__cause__ or current.__context__
    if found is None:
        return None
    kind = type(found).__name__
    if "Credential" in kind:
        return "no usable credentials for the object storage"
    if "Connect" in kind or "Timeout" in kind or "Endpoint" in kind:
        return "the object storage could not be reached"
    return f"the object storage failed ({kind})"
