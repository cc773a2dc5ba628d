"""What the commands print in tables and write with ``--json``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click


def number(value: float | None, digits: int = 2) -> str:
    """A table cell: ``value`` with ``digits`` decimals, ``-`` when there is none."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def count(value: float) -> str:
    """A counter as a whole number when it is one (pulls), else with 4 decimals."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.4f}"


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to the ``--json`` file; a file we cannot write is a usage error."""
    try:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(str(exc), param_hint="'--json'") from None
