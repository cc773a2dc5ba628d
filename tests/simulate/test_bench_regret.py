"""Smoke run of bench/regret.py --quick: every section prints its table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_prints_every_table(tmp_path):
    out = tmp_path / "regret.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "regret.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout
    for heading in ("### (a)", "### (b)", "### (c)", "### (d)", "Command:", "Machine:", "Date:"):
        assert heading in text
    # the reproduction is always run in full, even with --quick
    for number in ("20.89", "62.93", "93.68", "109.5", "331.0"):
        assert number in text
    assert "| thompson" in text
    assert "| sw-ucb" in text
    assert "decide + record" in text
    report = json.loads(out.read_text())
    assert report["quick"] is True
    assert {"a", "b", "c", "d", "wall_seconds"} <= set(report)
    for record in report["a"]["reference"]:
        assert round(record["regret"], 2) == record["published_regret"]
