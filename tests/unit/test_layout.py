"""The layout as rules a test can check: imports run one way, modules and views stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "jobs"

# Each layer may import the layers to its right, never to its left (views … models, lib).
LAYERS = [
    {
        "jobs.views",
        "jobs.admin",
        "jobs.admin_audit",
        "jobs.management",
        "jobs.urls",
        "jobs.context_processors",
    },
    {"jobs.templatetags"},
    {"jobs.forms"},
    {"jobs.services"},
    {"jobs.tasks"},
    {"jobs.tracker"},
    {"jobs.submission", "jobs.archive"},
    {"jobs.lifecycle", "jobs.snapshot_rows"},
    {"jobs.polling"},
    {"jobs.notify", "jobs.outbound"},
    # jobs.table_version reads through jobs.selectors (one layer, imports within it allowed)
    {
        "jobs.selectors",
        "jobs.table_version",
        "jobs.batch_reads",
        "jobs.review_reads",
        "jobs.audit_reads",
        "jobs.spend_reads",
    },
    {"jobs.models"},
    {"jobs.provider", "jobs.lib"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> list[Path]:
    return [p for p in JOBS.rglob("*.py") if "migrations" not in p.parts]


def imports_of(path: Path) -> set[str]:
    """Every `jobs…` module this file imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "jobs":
                found.update(f"jobs.{alias.name}" for alias in node.names)
            elif node.module.startswith("jobs."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("jobs."))
    return found


def layer(module: str) -> int:
    for index, members in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return index
    raise AssertionError(f"{module} is in no layer of tests/unit/test_layout.py")


def test_imports_run_one_way() -> None:
    wrong = []
    for path in sources():
        here = module_name(path)
        if here in ("jobs", "jobs.apps"):
            continue
        for target in imports_of(path):
            if target == "jobs.apps":
                continue
            if layer(target) < layer(here):
                wrong.append(f"{here} imports {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_there_is_no_import_cycle() -> None:
    graph = {module_name(p): imports_of(p) for p in sources()}

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            raise AssertionError("import cycle: " + " -> ".join([*stack, node]))
        for target in graph.get(node, ()):
            visit(target, [*stack, node])

    for start in graph:
        visit(start, [])


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_500_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 500


def test_no_view_function_is_over_40_lines() -> None:
    long = []
    for path in (JOBS / "views").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > 40:
                    long.append(f"{path.name}:{node.name} is {length} lines")
    assert not long, "\n".join(long)
