"""The public surface, and the promise that the SDK stands alone."""

from __future__ import annotations

import copy
import pickle
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import ForwardRef

import pytest
from edge_support import PUBLIC_KEY, signed

import mabware_edge
from mabware_edge import (
    CookieEntry,
    Decision,
    Response,
    Snapshot,
    SnapshotExperiment,
    read_snapshot,
)

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
#: what a cold start from the cache file has no use for, and so must not import:
#: HTTP (urllib, http.client, email, ssl), logging, dataclasses and inspect,
#: tempfile and shutil, uuid, json, and the cookie ciphers
NOT_FOR_A_COLD_START = (
    "cryptography.hazmat.primitives.ciphers.aead",
    "cryptography.hazmat.primitives.kdf.hkdf",
    "dataclasses",
    "email",
    "http.client",
    "inspect",
    "json",
    "logging",
    "shutil",
    "ssl",
    "tempfile",
    "urllib.request",
    "uuid",
)


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


def test_a_cold_start_from_the_cache_file_imports_nothing_it_does_not_use(tmp_path: Path) -> None:
    # a timing assert would be flaky; what is imported is the cost, and it is exact
    cache = tmp_path / "mab.snap"
    cache.write_bytes(signed(1, issued=time.time()))
    code = f"""
        import sys
        before = set(sys.modules)
        import mabware_edge
        edge = mabware_edge.EdgeClient(
            None, public_key={PUBLIC_KEY!r}, cache_path={str(cache)!r}, refresh="manual"
        )
        assert edge.snapshot is not None, edge.rejected
        assert edge.decide("headline", "u").reason == "assigned"
        print(sorted((set(sys.modules) - before) & set({NOT_FOR_A_COLD_START!r})))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"


def test_named_tuples_hold_types_so_that_defining_them_compiles_nothing() -> None:
    # NamedTuple compile()s an annotation string into a ForwardRef, and the first
    # compile() in a process costs a cold start ~1 ms (CPython sets up its AST types)
    for record in (CookieEntry, Decision, Response):
        found = [t for t in record.__annotations__.values() if isinstance(t, str | ForwardRef)]
        assert found == [], f"{record.__name__}: its module must not defer annotations"


def test_snapshots_are_frozen_records_compared_by_value() -> None:
    snapshot = read_snapshot(signed(3), PUBLIC_KEY)
    again = read_snapshot(signed(3), PUBLIC_KEY)
    assert snapshot is not again
    assert snapshot == again
    assert hash(snapshot) == hash(again)
    assert snapshot != read_snapshot(signed(4), PUBLIC_KEY)
    assert snapshot != (snapshot.seq, snapshot.issued, snapshot.experiments)
    e = snapshot.experiments[0]
    assert repr(snapshot).startswith("Snapshot(seq=3, issued=")
    assert repr(e).startswith("SnapshotExperiment(name='headline', version=1, arms=(")
    with pytest.raises(AttributeError):
        e.name = "other"  # frozen at run time, as the dataclass was
    with pytest.raises(AttributeError):
        del snapshot.seq
    assert pickle.loads(pickle.dumps(snapshot)) == snapshot
    assert copy.deepcopy(snapshot) == snapshot
    rebuilt = SnapshotExperiment(**{name: getattr(e, name) for name in e.__match_args__})
    assert rebuilt == e
    match snapshot:
        case Snapshot(3, _, (SnapshotExperiment("headline", 1),)):
            pass
        case _:
            pytest.fail("Snapshot and SnapshotExperiment match positionally, field by field")
