"""The public surface, and the promise that the SDK stands alone."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import mabware_edge

EXPECTED = [
    "Cookie",
    "CookieEntry",
    "Decision",
    "EdgeClient",
    "RandomSource",
    "Response",
    "Snapshot",
    "SnapshotError",
    "SnapshotExperiment",
    "Transport",
    "UrllibTransport",
    "read_snapshot",
]
SDK = Path(__file__).resolve().parents[1]


def test_all_is_sorted_and_exact() -> None:
    assert mabware_edge.__all__ == EXPECTED
    assert sorted(mabware_edge.__all__) == mabware_edge.__all__


def test_every_exported_name_resolves_and_nothing_else_is_public() -> None:
    for name in mabware_edge.__all__:
        assert getattr(mabware_edge, name) is not None
    public = {n for n in vars(mabware_edge) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(mabware_edge, n)).__name__ == "module"}
    assert public - modules - set(EXPECTED) == set()


def test_typed() -> None:
    assert (Path(mabware_edge.__file__).parent / "py.typed").exists()


def test_importing_the_sdk_imports_no_mabware_numpy_or_starlette() -> None:
    code = (
        "import sys, mabware_edge, mabware_edge.client; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mabware', 'numpy', 'starlette'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_no_source_file_mentions_an_import_of_them() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(mabware|numpy|starlette)\b", re.MULTILINE)
    files = [*SDK.glob("mabware_edge/*.py"), *SDK.glob("tests/*.py")]
    assert len(files) > 10
    offenders = [str(f) for f in files if pattern.search(f.read_text("utf-8"))]
    assert offenders == []
