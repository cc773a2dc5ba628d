"""Under gunicorn, /metrics adds up every worker's counts, whichever worker answers.

gunicorn runs two uvicorn workers of ``app.py`` with ``PROMETHEUS_MULTIPROC_DIR``
set (prometheus_client's multiprocess mode) on a file store. K visitors
with a broken cookie are spread over both workers (each answer names its
pid; the test goes on until both have served). Then /metrics is scraped
through a connection held open to each worker in turn (``pinned_clients``),
several times each: every answer must say K rejected cookies and K
assignments per experiment, while the gauges read at scrape time (backend
up, allocation) must appear once, not once per worker. With ``--preload``
the metric objects are made in the master before the fork.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .harness import (
    CLOSE,
    LIVENESS,
    app_env,
    free_port,
    gunicorn,
    pinned_clients,
    serving,
    wait_for,
    whoami_all,
)

WORKERS = 2
AT_LEAST = 40  # broken-cookie visitors; more if one worker has not served yet
AT_MOST = 2000
SCRAPES = 3  # per worker

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for have, v in samples.get(name, []) if labels.items() <= have.items())


def check(samples: Samples, sent: int) -> None:
    """What one scrape must say after ``sent`` broken-cookie visitors."""
    assert total(samples, "mabware_cookies_rejected_total", reason="malformed") == sent
    for experiment in ("headline", "button"):
        assert total(samples, "mabware_assignments_total", experiment=experiment) == sent
        # read from the answering worker only: one worker's shares, not a sum over workers
        assert total(samples, "mabware_allocation", experiment=experiment) == pytest.approx(1.0)
    assert samples["mabware_backend_up"] == [({"store": "file"}, 1.0)]
    assert total(samples, "mabware_sync_duration_seconds_count", outcome="ok") >= WORKERS


@pytest.mark.parametrize("preload", [False, True], ids=["import-per-worker", "preload"])
def test_counters_add_up_over_workers_whichever_answers(tmp_path, preload):
    prom = tmp_path / "prometheus"
    prom.mkdir()
    port = free_port()
    env = {**app_env(f"file:{tmp_path / 'state'}"), "PROMETHEUS_MULTIPROC_DIR": str(prom)}
    argv = gunicorn(port, WORKERS, preload=preload)
    with serving(argv, port, tmp_path / "gunicorn.log", env) as server:
        server.wait_ready()
        assert len(whoami_all(server.url, WORKERS)) == WORKERS

        served: Counter[int] = Counter()
        with httpx.Client(base_url=server.url, headers=CLOSE, timeout=LIVENESS) as http:
            while sum(served.values()) < AT_LEAST or len(served) < WORKERS:
                assert sum(served.values()) < AT_MOST, f"one worker served them all: {served}"
                response = http.get("/", headers={"Cookie": "mabware=not-a-cookie"})
                assert response.status_code == 200, response.text
                served[int(response.text.rsplit("pid=", 1)[1])] += 1
        sent = sum(served.values())

        pinned = pinned_clients(server.url, WORKERS)
        try:
            assert set(pinned) == set(served), (pinned, served)
            for client in pinned.values():  # every worker has reached the file store
                assert wait_for(lambda c=client: total(scrape(c), "mabware_backend_up") == 1)
            for _ in range(SCRAPES):
                for pid, client in pinned.items():
                    try:
                        check(scrape(client), sent)
                    except AssertionError as exc:
                        raise AssertionError(f"scraped from pid {pid}; served {served}") from exc
        finally:
            for client in pinned.values():
                client.close()
    written = {int(p.stem.rsplit("_", 1)[1]) for p in prom.glob("counter_*.db")}
    assert set(served) <= written  # each worker counted in its own file
