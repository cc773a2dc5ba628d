"""Markdown tables for the bench scripts (pasted as-is into the README)."""

from __future__ import annotations

from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A GitHub-flavoured markdown table.

    Args:
        headers: column titles.
        rows: cells; anything with ``str()``.
        align: one letter per column, ``l`` or ``r`` (default: first column
            left, the rest right).
    """
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]

    def line(values: Sequence[str]) -> str:
        padded = [
            v.ljust(w) if a == "l" else v.rjust(w)
            for v, w, a in zip(values, widths, align, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + (":" if a == "r" else "-") for w, a in zip(widths, align, strict=True)]
    return "\n".join([line(list(headers)), "| " + " | ".join(rule) + " |", *map(line, cells)])


def num(value: float | None, digits: int = 2) -> str:
    """A number for a table cell; a dash for None."""
    return "-" if value is None else f"{value:.{digits}f}"
