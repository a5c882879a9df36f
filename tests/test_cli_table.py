"""CLI tables fit the terminal without cutting words (oneiric_core/cli/table.py)."""

from __future__ import annotations

import io

from rich.console import Console

from oneiric_core.cli.table import table

STATUS_ROWS = [
    ("service/scheduler", "interval (builtin)", "-", "inactive", "active", "unknown", "selected; 3 shadowed"),
    ("adapter/storage", "scratch (settings)", "scratch", "ready", "draining", "degraded", "1 shadowed"),
]


def render(width: int, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, highlight=False)
    t = table(*columns)
    for row in rows:
        t.add_row(*row)
    console.print(t)
    return out.getvalue().splitlines()


def test_at_80_columns_cells_wrap_between_words_and_no_word_is_cut():
    columns = ("COMPONENT", "WINNER", "SERVING", "STATE", "ACTIVITY", "HEALTH", "NOTES")
    lines = render(80, columns, STATUS_ROWS)
    assert all(len(line) <= 80 for line in lines)
    words = " ".join(lines).split()
    for row in STATUS_ROWS:
        for cell in row:
            for word in cell.split():
                assert word in words, (word, lines)  # every word whole, somewhere
    for header in columns:
        assert header in words
    # the first column never wraps: each component starts a line of its own
    assert sum(1 for line in lines if line.startswith(("service/scheduler ", "adapter/storage "))) == 2


def test_with_room_every_row_is_one_line():
    columns = ("COMPONENT", "WINNER", "SERVING", "STATE", "ACTIVITY", "HEALTH", "NOTES")
    lines = render(200, columns, STATUS_ROWS)
    row_lines = [line for line in lines if line.startswith(("service/", "adapter/"))]
    assert len(row_lines) == 2 and "selected; 3 shadowed" in row_lines[0]
    assert len(lines) == 4  # header, rule, two rows


def test_when_words_cannot_fit_the_last_column_folds_its_long_words():
    columns = ("COMPONENT", "PROVIDER", "SOURCE", "PRIO", "STACK", "", "WHY")
    rows = [("service/scheduler", "memory-large", "settings", "10", "0", "- shadowed",
             "shadowed: settings/services.yml selects 'interval'")]
    lines = render(80, columns, rows)
    assert all(len(line) <= 80 for line in lines)
    words = " ".join(lines).split()
    for word in ("service/scheduler", "memory-large", "settings", "shadowed"):
        assert word in words  # the short columns keep their words whole
    assert "settings/services.yml" not in words  # the path in the last column is folded instead
    assert "".join(lines).replace(" ", "").count("settings/services.yml") == 1


def test_piped_status_is_one_line_per_component(run_cli):
    """Read by a program (no terminal, no COLUMNS): rows are not wrapped at 80 columns."""
    piped = run_cli("status", env={"COLUMNS": ""})
    assert piped.returncode == 0, piped
    cache = next(line for line in piped.stdout.splitlines() if line.startswith("adapter/cache "))
    assert "memory (builtin)" in cache and "inactive" in cache and "shadowed" in cache
    narrow = run_cli("status", env={"COLUMNS": "80"})
    lines = narrow.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "inactive" in narrow.stdout.split() and "NOTES" in narrow.stdout
