"""Polled partials decided before rendering: Django's conditional view processing with the
version keys of jobs/table_version.py.

A tab sends the ETag of what it shows as If-None-Match (static/js/app.js, from the element's
data-version); an equal key is answered 304 before the view runs. Only htmx polls are
conditional: a full page (or htmx's history restore) always renders, and keeps
ConditionalGetMiddleware's content ETag.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from functools import wraps
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.csrf import get_token
from django.template.loader import get_template
from django.utils.cache import patch_cache_control
from django.utils.html import format_html
from django.views.decorators.http import condition

from jobs.models import Video
from jobs.notify import Notices
from jobs.table_version import DetailVersion, PageVersion
from jobs.views.common import revalidate

View = Callable[..., HttpResponseBase]
_ATTR = "_poll_version"


def is_poll(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request  # type: ignore[union-attr]


def conditional_poll(version_of: Callable[..., Any]) -> Callable[[View], View]:
    """Wrap a view whose htmx answer is described by `version_of(request, *args)`: an object
    with `.key` (the ETag to compare). The view reads the same object with `poll_version`."""

    def etag(request: HttpRequest, *args: Any, **kwargs: Any) -> str | None:
        if not is_poll(request):
            return None
        version = version_of(request, *args, **kwargs)
        setattr(request, _ATTR, version)
        return str(version.key)

    def decorator(view: View) -> View:
        conditioned = condition(etag_func=etag)(view)

        @wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            response = conditioned(request, *args, **kwargs)
            if response.status_code == 304 and isinstance(response, HttpResponse):
                revalidate(response)  # a 304 carries the 200's caching headers (RFC 9110)
            return response

        return inner

    return decorator


def poll_version[V](request: HttpRequest, compute: Callable[[], V]) -> V:
    """The version the conditional check computed for this request, or a fresh one."""
    version = getattr(request, _ATTR, None)
    if version is None:
        version = compute()
        setattr(request, _ATTR, version)
    return version


def changes_only(response: HttpResponse) -> HttpResponse:
    """An answer of out-of-band rows: htmx swaps only those (HX-Reswap: none for the target),
    and no cache may keep it, since it only makes sense on top of the tab's own copy."""
    response["HX-Reswap"] = "none"
    patch_cache_control(response, private=True, no_store=True)
    return revalidate(response)


def detail_poll_context(
    request: HttpRequest, compute: Callable[[], DetailVersion]
) -> dict[str, Any]:
    """A polled detail panel's version, and my notices as its key read them when no news
    waits (a poll then needs no take_notifications query)."""
    version = poll_version(request, compute)
    ctx: dict[str, Any] = {"version": version.key}
    if is_poll(request) and not version.mine.pending:
        ctx["notices"] = Notices(version.mine.running, [])
    return ctx


def versioned(request: HttpRequest, response: HttpResponse, ctx: dict[str, Any]) -> HttpResponse:
    """A poll's answer carries the version it shows as its ETag (the tab's next If-None-Match)."""
    if is_poll(request) and "version" in ctx:
        response["ETag"] = ctx["version"]
    return response


# --- changed rows, rendered once per state -----------------------------------------------------
# Every open tab on a page gets the same changed rows, and a row's markup is a function of its
# state (the digest in the page's key), the view, and whether the viewer may manage it. So each
# (view, row, digest, manages) is rendered once per process and kept; the forms' CSRF token is
# a placeholder, replaced per answer with a freshly masked token (BREACH: never one token twice).
_CSRF_PLACEHOLDER = secrets.token_hex(16)  # unguessable: a prompt cannot contain it
_ROWS: OrderedDict[Hashable, str] = OrderedDict()
_ROWS_MAX = 2048
_ROWS_LOCK = threading.Lock()
ROW_PARTIALS = {"table": "jobs/video_list.html#vrow", "gallery": "jobs/video_list.html#vcard"}


def changed_rows(
    request: HttpRequest,
    user: User,
    view: str,
    version: PageVersion,
    pks: list[int],
    fetch: Callable[[list[int]], Sequence[Video]],
) -> str:
    """The out-of-band markup of rows `pks`, from the cache or rendered (one query, `fetch`,
    for those missing)."""
    keys: dict[int, Hashable] = {}
    for pk in pks:
        digest, owner = version.row(pk)
        keys[pk] = (view, pk, digest, user.is_staff or owner == user.pk)
    with _ROWS_LOCK:
        found = {pk: _ROWS[k] for pk, k in keys.items() if k in _ROWS}
    missing = [pk for pk in pks if pk not in found]
    if missing:
        template = get_template(ROW_PARTIALS.get(view, ROW_PARTIALS["table"]))
        for video in fetch(missing):
            ctx = {"video": video, "user": user, "oob": True, "csrf_token": _CSRF_PLACEHOLDER}
            found[video.pk] = template.render(ctx)
        with _ROWS_LOCK:
            for pk in missing:
                if pk in found:
                    _ROWS[keys[pk]] = found[pk]
            while len(_ROWS) > _ROWS_MAX:
                _ROWS.popitem(last=False)
    html = "".join(found[pk] for pk in pks if pk in found)
    return (
        html.replace(_CSRF_PLACEHOLDER, get_token(request)) if _CSRF_PLACEHOLDER in html else html
    )


def notices_oob(notices: Notices) -> str:
    """#table-notices (video_list.html) out of band: the template's, or, with no news to
    show (nearly every tick), the same element written here without a template render."""
    if notices.items:
        template = get_template("jobs/video_list.html#table-notices")
        return template.render({"notices": notices, "oob": True})
    return format_html(
        '<div id="table-notices" hidden data-running="{}" hx-swap-oob="true"></div>',
        notices.running,
    )
