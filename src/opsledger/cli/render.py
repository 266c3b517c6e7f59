"""Output people read: aligned tables (Rich), Markdown and CSV, from the same rows."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

STATUS_STYLE = {
    "met": "green",
    "missed": "bold red",
    "no_data": "dim",
    "report": "cyan",
    "error": "magenta",
}


def out_console() -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:  # a pipe or file: never truncate columns
        console = Console(highlight=False, soft_wrap=False, width=250)
    return console


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def fmt_number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.{digits}f}"
    return str(value)


def table(
    title: str | None,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    numeric: Sequence[bool] | None = None,
    styles: Sequence[Sequence[str | None]] | None = None,
) -> Table:
    t = Table(
        title=title, title_justify="left", header_style="bold", show_edge=False, pad_edge=False
    )
    for i, h in enumerate(headers):
        t.add_column(h, justify="right" if numeric and numeric[i] else "left", no_wrap=True)
    for r, row in enumerate(rows):
        cells = []
        for c, cell in enumerate(row):
            text = cell if isinstance(cell, str) else fmt_number(cell)
            style = styles[r][c] if styles else None
            cells.append(f"[{style}]{text}[/]" if style else text)
        t.add_row(*cells)
    return t


def markdown(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool] | None = None
) -> str:
    def cell(v: Any) -> str:
        return (v if isinstance(v, str) else fmt_number(v)).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |"]
    lines.append(
        "|"
        + "|".join("---:" if numeric and numeric[i] else "---" for i in range(len(headers)))
        + "|"
    )
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    for row in rows:
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
