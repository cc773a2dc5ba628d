"""GET /edge/snapshot and the published allocations GET /decision walks.

In process (``api_client.Client``) for the endpoint and the decisions; a
real uvicorn for what needs the server's own clock to run (re-issue at the
interval). Two apps on one file store stand for two workers of one server.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_client import (
    READ,
    READ_TOKEN,
    TOKEN,
    WRITE,
    Client,
    problem,
    serve_command,
    uvicorn_server,
)

from mabware import assign, edge_snapshot
from mabware.edge_snapshot import EdgeSnapshot
from mabware.exceptions import ConfigError
from mabware.server import create_app
from mabware.server.edge import NO_SIGNING_KEY

PAIR = edge_snapshot.generate_signing_keys()
PUBLIC = edge_snapshot.public_key(PAIR["public_key"])
KEY = json.dumps(PAIR)  # what `mabware keygen --signing` prints


@pytest.fixture
def serve(tmp_path) -> Iterator[Callable[..., Client]]:
    """A factory of clients of fresh apps on one file store (two calls: two workers)."""
    clients: list[Client] = []

    def make(*, headers: dict[str, str] | None = None, **settings: Any) -> Client:
        settings = {"signing_key": KEY, **settings}
        clients.append(Client(create_app(f"file:{tmp_path}/state", **settings), headers=headers))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def create(client: Client, name: str = "cta", arms: tuple[str, ...] = ("a", "b", "c"), **more: Any):
    body = {"experiment_id": name, "arm_ids": list(arms), **more}
    response = client.post("/experiments", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def fetch(client: Client, **headers: str) -> EdgeSnapshot:
    response = client.get("/edge/snapshot", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/msgpack"
    return edge_snapshot.read(response.content, PUBLIC)  # verifies the signature


def test_the_snapshot_is_signed_and_cached_by_a_strong_etag(serve):
    client = serve()
    create(client)
    first = client.get("/edge/snapshot")
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    assert etag.startswith('"')  # strong
    snapshot = edge_snapshot.read(first.content, PUBLIC)
    (cta,) = snapshot.experiments
    assert (cta.name, cta.arms, cta.status, cta.version) == ("cta", ("a", "b", "c"), "active", 1)
    assert cta.allocation == pytest.approx((1 / 3,) * 3)
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get("/edge/snapshot", headers={"If-None-Match": header})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
    head = client.request("HEAD", "/edge/snapshot")
    assert (head.status_code, head.headers["etag"], head.content) == (200, etag, b"")
    # another key does not verify it
    other = edge_snapshot.public_key(edge_snapshot.generate_signing_keys()["public_key"])
    with pytest.raises(edge_snapshot.SnapshotError, match="signature"):
        edge_snapshot.read(first.content, other)


def test_the_read_or_the_write_token_reads_it(serve):
    client = serve(token=TOKEN, read_token=READ_TOKEN, protect=["metrics"])
    assert fetch(client, **READ).experiments == ()
    assert fetch(client, **WRITE).experiments == ()
    refused = client.get("/edge/snapshot")
    problem(refused, 401)
    assert refused.headers["www-authenticate"].startswith("Bearer")
    problem(client.get("/edge/snapshot", headers={"Authorization": "Bearer wrong"}), 401)


def test_without_a_signing_key_it_is_404_and_decisions_still_walk_a_snapshot(serve, tmp_path):
    client = serve(signing_key=None)
    create(client)
    refused = problem(client.get("/edge/snapshot"), 404)
    assert refused["type"] == NO_SIGNING_KEY
    assert "--signing-key-file" in refused["detail"]
    decision = client.get("/decision", params={"experiment_id": "cta"}).json()
    stored = edge_snapshot.read((tmp_path / "state.edge").read_bytes(), None)
    assert decision["snapshot_seq"] == stored.seq
    with pytest.raises(edge_snapshot.SnapshotError, match="signature"):
        edge_snapshot.read((tmp_path / "state.edge").read_bytes(), PUBLIC)  # stored unsigned


def test_an_experiment_is_published_before_its_create_answers(serve, tmp_path):
    client = serve()
    before = fetch(client).seq
    create(client, "new")
    stored = edge_snapshot.read((tmp_path / "state.edge").read_bytes(), PUBLIC)
    assert [e.name for e in stored.experiments] == ["new"]
    assert stored.seq > before
    assert fetch(client) == stored


def test_every_change_issues_a_snapshot_with_a_higher_seq(serve):
    client = serve()
    seqs = [fetch(client).seq]
    create(client)
    seqs.append(fetch(client).seq)
    for path, body in [
        ("/experiments/cta/arms", {"arm_ids": ["d"]}),
        ("/config", {"experiment_id": "cta", "strategy": "ucb1"}),
        ("/experiments/cta/arms/b/disable", None),
        ("/experiments/cta/reset", None),
    ]:
        assert client.post(path, json=body).status_code == 200
        seqs.append(fetch(client).seq)
    assert seqs == sorted(set(seqs))
    (cta,) = fetch(client).experiments
    assert (cta.arms, cta.version) == (("a", "b", "c", "d"), 2)
    assert cta.allocation[1] == 0.0  # b is switched off


def test_the_seq_rises_across_a_restart_on_the_same_store(tmp_path):
    first = Client(create_app(f"file:{tmp_path}/state", signing_key=KEY))
    create(first)
    before = fetch(first).seq
    first.close()
    after = Client(create_app(f"file:{tmp_path}/state", signing_key=KEY))
    try:
        assert fetch(after).seq >= before  # the stored one, or a newer one
        assert after.post("/experiments/cta/reset").status_code == 200
        assert fetch(after).seq > before
    finally:
        after.close()


def test_a_decision_walks_the_published_allocation_it_names(serve):
    client = serve()
    create(client, strategy="epsilon_greedy", strategy_params={"epsilon": 0.2})
    for _ in range(60):  # teach it that c pays (the allocation stays uniform meanwhile)
        decision = client.get("/decision", params={"experiment_id": "cta"}).json()
        sent = {"experiment_id": "cta", "decision_id": decision["decision_id"],
                "reward": float(decision["arm_id"] == "c")}  # fmt: skip
        assert client.post("/reward", json=sent).status_code == 200
    # the server learns at the snapshot cadence: a change publishes at once
    swap = {"experiment_id": "cta", "strategy": "epsilon_greedy"}
    assert client.post("/config", json=swap).status_code == 200
    snapshot = fetch(client)
    (cta,) = snapshot.experiments
    assert max(cta.allocation) == cta.allocation[2] > 0.8
    table = assign.cumulative(cta.allocation)
    for unit in (f"user-{k}" for k in range(40)):
        answer = client.get("/decision", params={"experiment_id": "cta", "unit_id": unit}).json()
        assert answer["snapshot_seq"] == snapshot.seq
        index = assign.assign_unit(table, "cta", cta.version, unit)
        assert answer["arm_id"] == cta.arms[index]
        assert answer["propensity"] == cta.allocation[index]
        assert answer["counted"] is True


def test_a_disabled_experiment_snapshot_status_gives_the_default_arm_uncounted(serve):
    client = serve()
    create(client, arms=("a", "b"), default_arm="b")
    for arm in ("a", "b"):
        assert client.post(f"/experiments/cta/arms/{arm}/disable").status_code == 200
    (cta,) = fetch(client).experiments
    assert cta.status == "fallback"
    answer = client.get("/decision", params={"experiment_id": "cta", "unit_id": "u"}).json()
    assert (answer["arm_id"], answer["counted"], answer["propensity"]) == ("b", False, 1.0)


def test_two_workers_serve_the_same_seq_and_allocation(serve):
    first, second = serve(), serve()
    create(first)  # the second learns of it from the first request naming it
    answer = second.get("/decision", params={"experiment_id": "cta", "unit_id": "u"}).json()
    mine = first.get("/decision", params={"experiment_id": "cta", "unit_id": "u"}).json()
    assert answer["snapshot_seq"] == mine["snapshot_seq"]
    assert (answer["arm_id"], answer["propensity"]) == (mine["arm_id"], mine["propensity"])
    assert first.get("/edge/snapshot").content == second.get("/edge/snapshot").content
    # a reset on the second is what the first walks next
    assert second.post("/experiments/cta/reset").status_code == 200
    reset = first.get("/decision", params={"experiment_id": "cta"}).json()
    assert reset["version"] == 2
    assert reset["snapshot_seq"] == fetch(second).seq


def test_a_payload_the_snapshot_cannot_carry_is_refused_at_create(serve):
    client = serve()
    body = {"experiment_id": "big", "arm_ids": ["a", "b"], "payloads": {"a": {"n": 2**70}}}
    refused = problem(client.post("/experiments", json=body), 422)
    assert refused["field"] == "payloads"
    create(client)  # and publishing goes on
    assert [e.name for e in fetch(client).experiments] == ["cta"]


@pytest.mark.parametrize(
    ("settings", "says"),
    [({"signing_key": "nope"}, "keygen --signing"),
     ({"signing_key": '{"private_key": 1}'}, "private_key"),
     ({"snapshot_interval": 0}, "snapshot_interval"),
     ({"snapshot_interval": float("nan")}, "snapshot_interval"),
     ({"push_token": "p"}, "needs a write token"),
     ({"push_token": "t", "token": "t"}, "must differ"),
     ({"push_token": "two words", "token": "t"}, "push_token")],
)  # fmt: skip
def test_bad_edge_settings_are_config_errors(settings, says):
    with pytest.raises(ConfigError, match=says) as raised:
        create_app("memory:", **settings)
    assert "nope" not in str(raised.value)


def test_a_snapshot_is_issued_at_the_interval_without_any_change(tmp_path: Path):
    settings = {"signing_key": KEY, "snapshot_interval": 0.2}
    with uvicorn_server(f"file:{tmp_path}/state", tmp_path / "server.log", **settings) as server:
        seqs: list[int] = []
        deadline = time.monotonic() + 10
        while len(set(seqs)) < 4:
            assert time.monotonic() < deadline, f"no re-issue: {seqs}"
            response = httpx.get(f"{server.url}/edge/snapshot")
            seqs.append(edge_snapshot.read(response.content, PUBLIC).seq)
            time.sleep(0.05)
        assert seqs == sorted(seqs)


def test_two_uvicorn_workers_serve_one_snapshot(tmp_path: Path):
    """``mabware serve --workers 2``: whichever worker answers, one seq, one allocation."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MABWARE_")}
    env["MABWARE_SIGNING_KEY"] = KEY
    args = ["--workers", "2", "--store", f"file:{tmp_path / 'state'}"]
    with serve_command(tmp_path, args, env) as served:
        url = served.url
        body = {"experiment_id": "hero", "arm_ids": ["left", "middle", "right"]}
        assert httpx.post(f"{url}/experiments", json=body).status_code == 201
        # one connection each, so that both workers answer (whichever the kernel picks)
        answers = [
            httpx.get(f"{url}/decision", params={"experiment_id": "hero", "unit_id": "u"}).json()
            for _ in range(20)
        ]
        assert len({(a["snapshot_seq"], a["arm_id"], a["propensity"]) for a in answers}) == 1
        stored = edge_snapshot.read((tmp_path / "state.edge").read_bytes(), PUBLIC)
        assert answers[0]["snapshot_seq"] == stored.seq
        fetched = {httpx.get(f"{url}/edge/snapshot").content for _ in range(20)}
        assert fetched == {(tmp_path / "state.edge").read_bytes()}
    assert served.code == 0, served.log.read_text()
    assert "Traceback" not in served.log.read_text()
