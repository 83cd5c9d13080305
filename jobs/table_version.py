"""The polls' version keys: is what a polled page shows unchanged, decided before rendering.

One rule, used by the jobs list (table and gallery) and the detail page's polled panel
(jobs/views/polls.py answers 304 when the key is the one the tab already has):

- A **page's key** is the ordered list of the rows on that page (the same query as the page,
  sliced the same way, reading only `pk`, `updated_at` and the state columns through the
  sort's index) plus who is asking and what they asked for (user, view, filters, page number).
  A row's digest covers its `updated_at`, and every write of a column a page shows moves it
  (`save()` through `auto_now`, bulk updates through `VideoQuerySet.update`). So an edit, a new
  row, a deletion, or a row entering or leaving the page through a filter or sort all change
  the key; nothing off the page does.
- **My notices** ride along: the count and the sum of the ids of my running jobs (the tab
  title's "(n)" and when to stop) and whether news is waiting for me (a finished job not yet
  told). Waiting news always makes the answer render, since rendering is what takes it.
- The three parts come from ONE query: the page slice, with my running count, the sum of
  their ids and "news waiting?" as uncorrelated subqueries (each one index probe, evaluated
  once) in its select list. Its SQL is compiled once per (user, filters, page) and kept: a
  tab asks the same question every tick, and building a queryset costs more than running it.

The key is also the way back to the changed rows: the ETag lists one short digest per row in
page order, so when the tab sends it back (If-None-Match) and the same rows are on the page,
the answer carries only the rows whose digest differs (out-of-band swaps); when the rows
themselves differ (a new job, a deletion, another order) or polling ends, the whole page.

Not in the key (shown as of the last change of the row, or the next full page): the pager's
total, a row's related names (its owner's username, its source's deletion), the provider's
capability flags behind the row actions, and the row's charge amount (set together with its
status). Relative times ("3 minutes ago") are kept current by static/js/time.js instead.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Exists, F, Func, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from jobs.models import Video
from jobs.selectors import TableFilters, videos_for_table, with_retries

PAGE_PREFIX = "p1"  # bump when the row markup changes, so open tabs fetch whole pages again
DETAIL_PREFIX = "d1"
STATE = ("pk", "updated_at", "status", "submission", "asset_state", "owner_id")
MINE = ("mine_n", "mine_s", "mine_news")


def _digest(text: str, size: int) -> str:
    """`size` bytes of BLAKE2b as URL-safe base64: no comma, quote or space (ETag-safe)."""
    raw = hashlib.blake2b(text.encode(), digest_size=size).digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _row_digest(*columns: object) -> str:
    """A row's (pk, updated_at, state…) as `_rows` reads them: raw values (a datetime on
    PostgreSQL, its text on SQLite), the same each time on one database."""
    return _digest("|".join(map(str, columns)), 4)  # 6 characters per row


_COMPILED: OrderedDict[Hashable, tuple[str, tuple[Any, ...]]] = OrderedDict()
_COMPILED_MAX = 1024  # (user, filters, page) combinations kept per process
_LOCK = threading.Lock()


def _rows(key: Hashable, build: Callable[[], QuerySet[Any]]) -> list[tuple[Any, ...]]:
    """Run the query `build()` makes, compiled once per `key` (which must determine it)."""
    with _LOCK:
        compiled = _COMPILED.get(key)
        if compiled is not None:
            _COMPILED.move_to_end(key)
    if compiled is None:
        try:
            compiled = build().query.sql_with_params()
        except EmptyResultSet:  # a filter that can match nothing compiles to no SQL at all
            return []
        with _LOCK:
            _COMPILED[key] = compiled
            while len(_COMPILED) > _COMPILED_MAX:
                _COMPILED.popitem(last=False)
    with connections["default"].cursor() as cursor:
        cursor.execute(*compiled)
        return cursor.fetchall()


def _will_change(status: str, submission: str, assets: str) -> bool:
    """Video.will_change (is_active or is_archiving) from the key's columns alone; no model
    instance, which would cost more than the whole key."""
    active = status in Video.ACTIVE and submission not in Video.HALTED
    return active or (status == Video.Status.COMPLETED and assets == Video.Assets.PENDING)


@dataclass(frozen=True)
class Mine:
    """My side of every polled answer: running jobs for the title, and whether news waits."""

    running: int
    id_sum: int
    pending: bool

    @classmethod
    def read(cls, columns: Sequence[Any]) -> Mine:
        return cls(int(columns[0] or 0), int(columns[1] or 0), bool(columns[2]))

    @property
    def token(self) -> str:
        # News waiting never matches a tab's version, so the answer that takes it renders;
        # that answer still says "!", and the tab's next tick settles it (a few bytes).
        return f"{self.running}x{self.id_sum:x}{'!' if self.pending else ''}"


def _mine_columns(qs: QuerySet[Video], user: User) -> QuerySet[Video]:
    """`qs` annotated with my running count, the sum of their ids and "news waiting?"."""
    active = Video.objects.filter(owner=user).active().order_by()
    # Func, not Count/Sum: an aggregate would GROUP BY the outer query; this stays a scalar.
    count = active.annotate(n=Func(F("pk"), function="COUNT")).values("n")
    total = active.annotate(s=Func(F("pk"), function="SUM")).values("s")
    return qs.annotate(
        mine_n=Coalesce(Subquery(count, output_field=IntegerField()), Value(0)),
        mine_s=Coalesce(Subquery(total, output_field=IntegerField()), Value(0)),
        mine_news=Exists(Video.objects.filter(owner=user, notify_pending=True)),
    )


@dataclass(frozen=True)
class PageVersion:
    """What one page of the jobs list shows, as of one query (see the module docstring)."""

    scope: str  # user, view, filters and page number
    pks: tuple[int, ...]  # the rows on the page, in order
    rows: tuple[str, ...]  # each row's digest, in the same order
    owners: tuple[int | None, ...]  # each row's owner (its actions depend on who asks)
    mine: Mine | None  # None when the page is empty (nothing to read it from)
    polling: bool  # a row on the page will still change by itself

    @property
    def members(self) -> str:
        return _digest(",".join(map(str, self.pks)), 6)

    @property
    def key(self) -> str:
        """The ETag: what `condition` compares, and how the tab says what it has."""
        mine = self.mine.token if self.mine else "-"
        return f'"{PAGE_PREFIX}.{self.scope}.{self.members}.{mine}.{"".join(self.rows)}"'

    def row(self, pk: int) -> tuple[str, int | None]:
        """The digest and owner of row `pk` on this page."""
        at = self.pks.index(pk)
        return self.rows[at], self.owners[at]

    def changed_since(self, if_none_match: str) -> list[int] | None:
        """The pks of the rows that changed since the tab's version, or None when it needs
        the whole page (no version, another page or order of rows, or polling ends)."""
        old = _unquote(if_none_match).split(".")
        if len(old) != 5 or old[0] != PAGE_PREFIX or not self.polling:
            return None
        if old[1] != self.scope or old[2] != self.members:
            return None
        digests = [old[4][i : i + 6] for i in range(0, len(old[4]), 6)]
        if len(digests) != len(self.rows):
            return None
        return [pk for pk, new, was in zip(self.pks, self.rows, digests, strict=True) if new != was]


def _unquote(etag: str) -> str:
    return etag.strip().removeprefix("W/").strip('"')


def page_slice(number: int, size: int) -> slice:
    """The rows of page `number` (from 1), as Django's Paginator slices them."""
    return slice((number - 1) * size, number * size)


def page_version(
    *, user: User, filters: TableFilters, view: str, number: int, size: int
) -> PageVersion:
    """One query: the page's rows' state and my notices' state (see the module docstring)."""
    asked = f"{user.pk}|{size}|{number}|{filters!r}"

    def build() -> QuerySet[Any]:
        rows = _mine_columns(videos_for_table(user=user, filters=filters), user)
        return rows.values_list(*STATE, *MINE)[page_slice(number, size)]

    found = _rows(("page", asked), build)
    return PageVersion(
        scope=_digest(f"{asked}|{view}", 6),
        pks=tuple(r[0] for r in found),
        rows=tuple(_row_digest(*r[:6]) for r in found),
        owners=tuple(r[5] for r in found),
        mine=Mine.read(found[0][6:9]) if found else None,
        polling=any(_will_change(*r[2:5]) for r in found),
    )


@dataclass(frozen=True)
class DetailVersion:
    """What a video's polled panel shows: the video, its remixes, and my notices."""

    state: str
    mine: Mine

    @property
    def key(self) -> str:
        return f'"{DETAIL_PREFIX}.{self.state}.{self.mine.token}"'


def detail_version(*, user: User, pk: int) -> DetailVersion:
    """One query for the video's row, its remixes' latest change and my notices."""

    def build() -> QuerySet[Any]:
        remixes = Video.objects.filter(source=OuterRef("pk")).order_by()
        latest = remixes.annotate(t=Func(F("updated_at"), function="MAX")).values("t")
        count = remixes.annotate(n=Func(F("pk"), function="COUNT")).values("n")
        return (
            _mine_columns(Video.objects.filter(pk=pk).order_by(), user)
            .annotate(remix_t=Subquery(latest), remix_n=Subquery(count))
            .values_list(*STATE, "remix_t", "remix_n", *MINE)
        )

    found = _rows(("detail", user.pk, pk), build)
    if not found:  # gone: the view answers 404; the key only has to differ from before
        return DetailVersion(f"{pk}.gone", Mine(0, 0, False))
    row = found[0]
    scope = _digest(f"{user.pk}|{pk}", 6)
    return DetailVersion(
        f"{scope}.{_row_digest(*row[:6])}{_row_digest(*row[6:8])}", Mine.read(row[8:])
    )


def changed(pks: Iterable[int]) -> Sequence[Video]:
    """The rows to send again, as the page shows them (owner, provider, charge and retry
    joined in; the source by its id only), in the order of `pks`. No table filters: the key
    has just seen these rows on the page, and a row that left it since changes the next key."""
    wanted = list(pks)
    rows = with_retries(Video.objects.select_related("owner", "provider")).filter(pk__in=wanted)
    by_pk = {video.pk: video for video in rows}
    return [by_pk[pk] for pk in wanted if pk in by_pk]
