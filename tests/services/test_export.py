"""CSV exports (issue 14, point 5): the table under its filters, usage for a month, streamed,
and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User

from jobs.lib.months import month_start
from jobs.models import Provider, Video
from jobs.selectors import TableFilters
from jobs.services import export
from jobs.services.submit import submit_create


def parse(chunks: object) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(chunks))))  # type: ignore[arg-type]


def made(provider: Provider, owner: User | None, prompt: str, **fields: object) -> Video:
    values: dict[str, object] = {
        "provider": provider,
        "owner": owner,
        "prompt": prompt,
        "model": "sora-2",
        "size": "720x1280",
        "seconds": "4",
        "status": Video.Status.COMPLETED,
        "progress": 100,
        "submission": Video.Submission.SUBMITTED,
        **fields,
    }
    return Video.objects.create(**values)


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("a fox = cute", "a fox = cute"),
        ("", ""),
        (-5, -5),  # numbers are numbers, not text a spreadsheet evaluates
        (Decimal("1.50"), Decimal("1.50")),
    ],
)
def test_cells_that_start_like_a_formula_get_an_apostrophe(cell: object, written: object) -> None:
    assert export.safe_cell(cell) == written


def test_the_table_export_follows_the_tables_filters_and_order(
    alice: User, bob: User, provider: Provider
) -> None:
    a = made(provider, alice, "a fox in the snow")
    b = made(provider, bob, "a fox at night", status=Video.Status.FAILED, progress=20,
             error_code="moderation", error_message="Refused.")  # fmt: skip
    made(provider, alice, "a whale", status=Video.Status.FAILED, progress=5)
    rows = parse(
        export.table_csv(
            user=alice, filters=TableFilters.from_query({"q": "fox", "sort": "oldest"})
        )
    )
    assert rows[0] == export.TABLE_HEADER
    assert [r[0] for r in rows[1:]] == [str(a.pk), str(b.pk)]
    by_column = dict(zip(rows[0], rows[2], strict=True))
    assert by_column["status"] == "Failed" and by_column["owner"] == "bob"
    assert by_column["error"] == "moderation Refused." and by_column["charged_usd"] == "0.00"

    mine_failed = TableFilters.from_query({"status": "failed", "mine": "1"})
    rows = parse(export.table_csv(user=alice, filters=mine_failed))
    assert [r[14] for r in rows[1:]] == ["a whale"]


def test_a_formula_in_a_prompt_is_escaped_in_the_export(alice: User, provider: Provider) -> None:
    made(provider, alice, '=HYPERLINK("http://evil.example","click")')
    rows = parse(export.table_csv(user=alice, filters=TableFilters()))
    assert rows[1][14] == '\'=HYPERLINK("http://evil.example","click")'


def test_the_export_is_written_in_chunks_not_at_once(
    alice: User, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "ROWS_PER_CHUNK", 2)
    for n in range(5):
        made(provider, alice, f"clip {n}")
    chunks = list(export.table_csv(user=alice, filters=TableFilters()))
    # header + 2 rows, 2 rows, 1 row: each chunk leaves as soon as it is full
    assert [c.count("\r\n") for c in chunks] == [3, 2, 1]
    assert len(parse(chunks)) == 6


def test_the_usage_export_has_the_usage_pages_rows_for_the_month(
    alice: User, bob: User, staff: User, provider: Provider
) -> None:
    team = Group.objects.create(name="editors")
    team.user_set.add(alice)
    for user in (alice, alice, bob):
        submit_create(
            user=user, provider=provider, prompt="a fox", model="sora-2", size="720x1280",
            seconds="4", key=uuid.uuid4(),
        )  # fmt: skip
    month = month_start()
    label = month.strftime("%Y-%m")
    rows = parse(export.usage_csv(viewer=alice, month=month))
    assert rows[0] == export.USAGE_HEADER
    assert rows[1:] == [  # alice sees her own spend and her team's, not bob's
        ["per_user", label, "alice", "", "2", "0.80"],
        ["per_team", label, "editors", "1", "2", "0.80"],
        ["per_month", label, "", "", "2", "0.80"],
        ["total", label, "", "", "", "0.80"],
    ]
    everyone = parse(export.usage_csv(viewer=staff, month=month))
    assert ["per_user", label, "bob", "", "1", "0.40"] in everyone
    assert everyone[-1] == ["total", label, "", "", "", "1.20"]
    earlier = month.replace(year=month.year - 1)
    assert parse(export.usage_csv(viewer=staff, month=earlier))[-1][-1] == "0.00"
