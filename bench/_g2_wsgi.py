"""The dashboard's WSGI application for bench/g2_pages.py, counting each request's cost.

gunicorn serves `bench._g2_wsgi:application`: Django's own application, unchanged, inside a
wrapper that counts the SQL statements the request runs (a connection execute wrapper) and
its thread's CPU time and wall time, up to the moment Django hands the response's headers
over (every middleware has run by then), and adds them as X-Bench-* response headers. Only
the bench uses this module; the settings are the production ones with DEBUG off, except that
static URLs need no collected manifest (`{% static %}` costs a dict lookup either way).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "remixsite.settings")

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connections  # noqa: E402

settings.STORAGES["staticfiles"] = {
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
django_application = get_wsgi_application()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    count = [0]

    def counted(execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any) -> Any:
        count[0] += 1
        return execute(sql, params, many, ctx)

    connection = connections["default"]  # this thread's: gunicorn's sync worker has one
    cpu, wall = time.thread_time(), time.perf_counter()

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        spent_cpu, spent_wall = time.thread_time() - cpu, time.perf_counter() - wall
        headers = [
            *headers,
            ("X-Bench-Queries", str(count[0])),
            ("X-Bench-Cpu-Us", str(round(spent_cpu * 1e6))),
            ("X-Bench-Wall-Us", str(round(spent_wall * 1e6))),
        ]
        return start_response(status, headers, exc_info)

    connection.execute_wrappers.append(counted)
    try:
        return django_application(environ, start)
    finally:
        connection.execute_wrappers.remove(counted)
