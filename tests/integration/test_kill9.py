"""SIGKILL a gunicorn worker mid-run: no acknowledged reward lost, none counted twice.

gunicorn with uvicorn workers serves ``app.py`` on a ``file:`` store while
four clients send new visitors, each rewarded once (one pull and one reward
in whichever worker answers, so a 200 names the replica that holds both).
One worker is SIGKILLed at a random moment; gunicorn replaces it; at the end
gunicorn is stopped with SIGTERM and the workers flush in their lifespan
shutdown. ``Kill9Result.problems`` lists the guarantees checked. The long
run (20 runs, 8 workers) is ``bench/sync_kill9.py``.
"""

from __future__ import annotations

import pytest

from .harness import kill9_run

WORKERS = 4
REWARDS = 1000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_loses_only_the_killed_workers_unpushed_counts(tmp_path, seed):
    result = kill9_run(tmp_path, workers=WORKERS, rewards=REWARDS, seed=seed)
    assert result.problems() == [], result
    assert result.reads > 0  # the state file was read while the workers wrote it
    assert len(result.survivors) >= 2  # the load reached several workers
