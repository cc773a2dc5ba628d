"""Writing a golden-vector file once, then only checking it (both generators use this).

The vectors are frozen: once a file exists, a generator that would produce
something else fails instead of rewriting it, because the edge SDK and
anyone else who implements the spec test against the committed bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path


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
