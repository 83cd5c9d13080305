"""CSV exports, streamed: the jobs table under its filters, and the usage page's month.

Rows are read with QuerySet.iterator() and written in chunks as the response is sent, so an
export of every job ever made costs the memory of one chunk, not of the table.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from jobs import selectors

ROWS_PER_CHUNK = 200  # one write to the socket per this many rows
DB_CHUNK = 500  # rows fetched per database round trip (a server-side cursor on PostgreSQL)
# A spreadsheet runs a cell that starts with one of these as a formula ("=HYPERLINK(…)" in a
# prompt would be a live link). OWASP's list: = + - @, and tab and carriage return.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

TABLE_HEADER = [
    "id", "requested_at", "owner", "status", "progress", "model", "size", "seconds", "kind",
    "source_id", "provider", "provider_video_id", "review_state", "charged_usd", "prompt",
    "error",
]  # fmt: skip
USAGE_HEADER = ["table", "month", "name", "members", "jobs", "spent_usd"]


def safe_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe; numbers,
    dates and other text pass as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class _Line:
    """A file-like object csv.writer writes one row into, read back at once."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The header, then the rows, as CSV text in chunks of ROWS_PER_CHUNK rows."""
    line = _Line()
    writer = csv.writer(line)
    writer.writerow(header)
    pending = 0
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
        pending += 1
        if pending >= ROWS_PER_CHUNK:
            yield line.text
            line.text, pending = "", 0
    if line.text:
        yield line.text


def _when(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def table_rows(*, user: User, filters: selectors.TableFilters) -> Iterator[list[Any]]:
    """The table's rows under `filters`: the same query (selectors.videos_for_table) and
    order the page shows, every page of it."""
    videos = selectors.videos_for_table(user=user, filters=filters).iterator(chunk_size=DB_CHUNK)
    for v in videos:
        yield [
            v.pk,
            _when(v.requested_at),
            v.owner.get_username() if v.owner else "",
            v.display_status,
            v.progress,
            v.model,
            v.size,
            v.seconds,
            v.kind,
            v.source_id or "",
            v.provider.name,
            v.video_id or "",
            v.review_state,
            f"{selectors.charged(v):.2f}",
            v.prompt,
            " ".join(filter(None, (v.error_code, v.error_message))),
        ]


def table_csv(*, user: User, filters: selectors.TableFilters) -> Iterator[str]:
    return csv_chunks(TABLE_HEADER, table_rows(user=user, filters=filters))


def usage_rows(*, viewer: User, month: datetime) -> Iterator[list[Any]]:
    """The usage page's three tables for `month`, as the viewer sees them (selectors.usage)."""
    usage = selectors.usage(viewer=viewer, month=month)
    label = month.strftime("%Y-%m")
    for row in usage.per_user:
        name = row["owner__username"] or "(imported, no owner)"
        yield ["per_user", label, name, "", row["jobs"], _money(row["total"])]
    for row in usage.per_team:
        yield ["per_team", label, row["name"], row["members"], row["jobs"], _money(row["total"])]
    for row in usage.per_month:
        yield [
            "per_month",
            row["month"].strftime("%Y-%m"),
            "",
            "",
            row["jobs"],
            _money(row["total"]),
        ]
    yield ["total", label, "", "", "", f"{usage.total:.2f}"]


def _money(amount: Any) -> str:
    return f"{amount or 0:.2f}"


def usage_csv(*, viewer: User, month: datetime) -> Iterator[str]:
    return csv_chunks(USAGE_HEADER, usage_rows(viewer=viewer, month=month))


def table_filename() -> str:
    return f"videos-{timezone.localtime().strftime('%Y%m%d-%H%M')}.csv"


def usage_filename(month: datetime) -> str:
    return f"usage-{month.strftime('%Y-%m')}.csv"
