"""The archive's S3 storage (ARCHIVE_STORAGE=s3): django-storages' S3Storage, uploading a local
file from its path.

S3Storage hands boto3 a file object, and for a file object boto3 (s3transfer) reads each
multipart part into memory first, up to ten of them at once: with the defaults, archiving a
100 MB video raised the worker's peak RSS by 105 MB, and still by 12 MB with 5 MiB parts sent one
at a time (bench/p6_download_memory.py). Given a path instead, s3transfer reads each part from
disk as it sends it, so memory no longer depends on the part size or on how many parts are in
flight. A verified download and a large uploaded reference image both have a path
(`temporary_file_path`); anything else goes the usual way.

Imported only through settings.STORAGES, so a process on local disk never loads boto3.
"""

from __future__ import annotations

from typing import Any

from storages.backends.s3 import S3Storage
from storages.utils import clean_name


class ArchiveS3Storage(S3Storage):
    def _save(self, name: str, content: Any) -> str:
        path = getattr(content, "temporary_file_path", None)
        if path is None or self.gzip:  # gzip would need the bytes in hand: the usual way
            return str(super()._save(name, content))
        cleaned = clean_name(name)
        key = self._normalize_name(cleaned)
        params = self._get_write_parameters(key, content)
        self.bucket.Object(key).upload_file(
            str(path()), ExtraArgs=params, Config=self.transfer_config
        )
        return str(cleaned)
