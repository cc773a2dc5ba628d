"""The REST API under real uvicorn processes on loopback.

Two ``create_app`` processes on one file store are two workers of
``mabware serve --workers 2``: what one creates the other serves, and a
reward on one reaches the statistics the other answers within two sync
intervals. A gigabyte streamed to ``/reward`` or ``/sync`` is refused
with 413 while the server's memory stays where it was.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from api_client import TOKEN, WRITE, uvicorn_server

SYNC = 0.5
#: what scheduling adds to the two sync intervals: the poll step, two file writes
SLACK = 0.25


@pytest.fixture
def workers(tmp_path) -> Iterator[tuple[str, str]]:
    store = f"file:{tmp_path}/state"
    with (
        uvicorn_server(store, tmp_path / "a.log", token=TOKEN, sync_interval=SYNC) as a,
        uvicorn_server(store, tmp_path / "b.log", token=TOKEN, sync_interval=SYNC) as b,
    ):
        yield a.url, b.url


def rewards(url: str, name: str) -> list[float]:
    response = httpx.get(f"{url}/experiments/{name}", headers=WRITE)
    assert response.status_code == 200, response.text
    return [arm["reward_sum"] for arm in response.json()["arms"]]


def test_two_workers_on_one_file_store_serve_the_same_experiments(workers):
    a, b = workers
    body = {"experiment_id": "hero", "arm_ids": ["left", "right"], "strategy": "thompson"}
    assert httpx.post(f"{a}/experiments", json=body, headers=WRITE).status_code == 201
    # created on A, served by B at once: the registry file is shared
    decision = httpx.get(f"{b}/decision?experiment_id=hero", headers=WRITE)
    assert decision.status_code == 200
    assert httpx.post(f"{b}/experiments", json=body, headers=WRITE).status_code == 409
    assert [e["experiment_id"] for e in httpx.get(f"{b}/experiments", headers=WRITE).json()[
        "experiments"
    ]] == ["hero"]  # fmt: skip

    # a reward on A moves what B answers within two sync intervals
    assert rewards(b, "hero") == [0.0, 0.0]
    sent = {"experiment_id": "hero", "arm_id": "right", "reward": 1.0}
    assert httpx.post(f"{a}/reward", json=sent, headers=WRITE).status_code == 200
    start = time.monotonic()
    while rewards(b, "hero") != [0.0, 1.0]:
        assert time.monotonic() - start < 2 * SYNC + SLACK, "B did not see A's reward"
        time.sleep(0.01)

    # a change of settings on B is what A serves next
    swap = {"experiment_id": "hero", "strategy": "ucb1"}
    assert httpx.post(f"{b}/config", json=swap, headers=WRITE).status_code == 200
    assert httpx.get(f"{a}/experiments/hero", headers=WRITE).json()["strategy"] == "ucb1"
    assert rewards(a, "hero") == [0.0, 1.0]  # the hot swap kept the data


@pytest.mark.parametrize(
    ("path", "media_type", "limit"),
    [("/reward", "application/json", "a JSON body is at most 65536 bytes"),
     ("/sync", "application/msgpack", "a push is at most 8388608 bytes")],
)  # fmt: skip
def test_a_gigabyte_streamed_is_413_in_bounded_memory(tmp_path, path, media_type, limit):
    with uvicorn_server(f"file:{tmp_path}/state", tmp_path / "server.log") as server:
        before = server.rss()
        sent = 0

        def gigabyte() -> Iterator[bytes]:  # chunked: no Content-Length to refuse early
            nonlocal sent
            chunk = b" " * (1 << 20)
            while sent < 1 << 30:
                sent += len(chunk)
                yield chunk

        response = httpx.post(
            server.url + path, content=gigabyte(), headers={"Content-Type": media_type}, timeout=120
        )
        assert response.status_code == 413, response.text
        assert sent == 1 << 30  # the whole gigabyte went out
        assert response.json()["detail"] == limit
        assert server.rss() - before < 64 << 20
        # and the server goes on serving
        assert httpx.get(f"{server.url}/snapshot").status_code == 200
        assert httpx.get(f"{server.url}/health").status_code == 200


def test_a_declared_length_over_the_limit_is_refused_before_the_body(tmp_path):
    with uvicorn_server("memory:", tmp_path / "server.log") as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            # a gigabyte declared, none of it sent: the answer must not wait for it
            conn.sendall(
                b"POST /reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1073741824\r\n\r\n"
            )
            status_line = conn.recv(4096).split(b"\r\n", 1)[0]
        assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
