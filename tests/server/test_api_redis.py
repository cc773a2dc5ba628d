"""The REST API on a ``redis://`` store: two server workers on one real Redis.

Two ``create_app`` instances on one Redis act like two workers of
``mabware serve --store redis://...`` (or two hosts): the experiment
registry lives in Redis beside the merged statistics, so an experiment
created on one is served by the other, and both count into one exact total.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis
from api_client import Client
from redis_server import running_redis

from mabware import edge_snapshot
from mabware.server import create_app


def _arms(client: Client) -> dict[str, tuple[float, float]]:
    body = client.get("/experiments/cta").json()
    return {a["arm"]: (a["pulls"], a["reward_sum"]) for a in body["arms"]}


def test_two_workers_share_experiments_and_statistics(tmp_path: Path) -> None:
    with running_redis(tmp_path) as redis_server:
        first = Client(create_app(redis_server.url, sync_interval=0.2))
        second = Client(create_app(redis_server.url, sync_interval=0.2))
        try:
            created = first.post("/experiments", json={"experiment_id": "cta",
                                                      "arm_ids": ["blue", "green"]})  # fmt: skip
            assert created.status_code == 201
            # the second worker learns of it on the first request that names it
            decision = second.get("/decision", params={"experiment_id": "cta"})
            assert decision.status_code == 200, decision.text
            decisions = {"blue": 0, "green": 0}
            for client in (first, second) * 10:
                arm = client.get("/decision", params={"experiment_id": "cta"}).json()["arm_id"]
                decisions[arm] += 1
                reward = client.post("/reward", json={"experiment_id": "cta", "arm_id": arm,
                                                      "reward": 0.5})  # fmt: skip
                assert reward.status_code == 200
            decisions[decision.json()["arm_id"]] += 1
            expected = {arm: (float(n), 0.5 * n - 0.5 * (arm == decision.json()["arm_id"]))
                        for arm, n in decisions.items()}  # fmt: skip
            # both replicas push within one sync_interval, and pull within the next;
            # the deadline is for "it must happen", not "fast" (a loaded CI machine)
            deadline = time.monotonic() + 30
            while not _arms(first) == expected == _arms(second) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _arms(first) == expected
            assert _arms(second) == expected
        finally:
            first.close()
            second.close()


def test_a_config_change_on_one_worker_reaches_the_other(tmp_path: Path) -> None:
    with running_redis(tmp_path) as redis_server:
        first = Client(create_app(redis_server.url))
        second = Client(create_app(redis_server.url))
        try:
            first.post("/experiments", json={"experiment_id": "cta", "arm_ids": ["a", "b"]})
            assert second.get("/experiments/cta").json()["strategy"] == "thompson"
            swapped = first.post("/config", json={"experiment_id": "cta", "strategy": "UCB1"})
            assert swapped.status_code == 200
            deadline = time.monotonic() + 2
            while (second.get("/experiments/cta").json()["policy"]["name"] != "ucb1"
                   and time.monotonic() < deadline):  # fmt: skip
                time.sleep(0.05)  # the registry revision is re-read every 0.25 s
            assert second.get("/experiments/cta").json()["policy"]["name"] == "ucb1"
        finally:
            first.close()
            second.close()


def test_two_workers_serve_one_signed_snapshot_from_redis(tmp_path: Path) -> None:
    pair = edge_snapshot.generate_signing_keys()
    public = edge_snapshot.public_key(pair["public_key"])
    with running_redis(tmp_path) as redis_server:
        first = Client(create_app(redis_server.url, signing_key=pair["private_key"]))
        second = Client(create_app(redis_server.url, signing_key=pair["private_key"]))
        try:
            created = first.post("/experiments", json={"experiment_id": "cta",
                                                      "arm_ids": ["blue", "green"]})  # fmt: skip
            assert created.status_code == 201
            stored = redis.Redis.from_url(redis_server.url).hget("mabware:edge", "data")
            assert [e.name for e in edge_snapshot.read(stored, public).experiments] == ["cta"]
            # the second has not seen it: it reads the stored snapshot at once
            decision = second.get("/decision", params={"experiment_id": "cta", "unit_id": "u"})
            mine = first.get("/decision", params={"experiment_id": "cta", "unit_id": "u"})
            assert decision.json()["snapshot_seq"] == mine.json()["snapshot_seq"]
            assert decision.json()["arm_id"] == mine.json()["arm_id"]
            assert edge_snapshot.read(stored, public).seq == mine.json()["snapshot_seq"]
            assert second.get("/edge/snapshot").content == stored
            # a reset on the second is published at once, for the first too
            assert second.post("/experiments/cta/reset").status_code == 200
            deadline = time.monotonic() + 2
            reset = first.get("/decision", params={"experiment_id": "cta"}).json()
            while reset["version"] != 2:  # the registry revision is re-read every 0.25 s
                assert time.monotonic() < deadline
                time.sleep(0.05)
                reset = first.get("/decision", params={"experiment_id": "cta"}).json()
            assert reset["snapshot_seq"] > mine.json()["snapshot_seq"]
        finally:
            first.close()
            second.close()
