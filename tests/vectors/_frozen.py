"""Writing a golden-vector file once, then only checking it (every generator uses this).

The vectors are frozen: once a file exists, a generator that would produce
something else fails instead of rewriting it, because the edge SDK and
anyone else who implements the spec test against the committed bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def write_or_check(output: Path, text: str, counts: str, *, check: bool) -> int:
    """Write ``text`` to a new ``output``, or compare it with the existing one; an exit code."""
    current = output.read_text(encoding="utf-8") if output.exists() else None
    if current == text:
        print(f"{output}: up to date ({counts})")
        return 0
    if check or current is not None:
        print(
            f"{output}: differs from what this script generates. The vectors are "
            "frozen: a spec change needs a new spec id and a new file (see README.md).",
            file=sys.stderr,
        )
        return 1
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output} ({counts})")
    return 0


def render(document: dict[str, Any], sections: Sequence[str]) -> str:
    """JSON with one item of each section per line (readable diffs), ASCII-only.

    The other keys come first, on the first line. ``ensure_ascii`` keeps every
    non-ASCII character as a ``\\u`` escape so that no editor or tool can
    re-normalise the Unicode test strings.
    """
    head = {k: v for k, v in document.items() if k not in sections}
    parts = [json.dumps(head, ensure_ascii=True)[:-1]]
    for section in sections:
        lines = [json.dumps(item, ensure_ascii=True, allow_nan=False) for item in document[section]]
        parts.append(f', "{section}": [\n' + ",\n".join(lines) + "\n]")
    return "".join(parts) + "}\n"


def generate(
    description: str,
    build: Callable[[], dict[str, Any]],
    output: Path,
    sections: Sequence[str],
    counts: Callable[[dict[str, Any]], str],
    argv: list[str] | None = None,
) -> int:
    """A generator's command line: build, render, then write once or ``--check``."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--output", type=Path, default=output)
    args = parser.parse_args(argv)
    document = build()
    text = render(document, sections)
    # repr() floats round-trip: the parsed file equals what was computed
    assert json.loads(text) == document
    return write_or_check(args.output, text, counts(document), check=args.check)
