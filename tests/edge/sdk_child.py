"""An SDK process of the fault tests, and the transport that records its pushes.

Run as ``python sdk_child.py MODE SETTINGS_JSON`` with tests/edge on the
path (``harness.env_with_repo``). SETTINGS_JSON has ``url`` (the server),
``public_key``, ``read_token``, ``push_token``, ``experiment`` and, per mode:

* ``count``: ``n`` and ``tag``. Decides ``n`` units and rewards each with
  1.0 (pushing every 0.2 s from the client's thread), closes the client
  (which pushes the rest), prints one JSON line: what it counted and the
  client's ``errors``.
* ``forever``: ``log``. Decides and rewards until it is killed, pushing
  every 0.05 s; ``RecordingTransport`` logs every push to ``log``.

Only the SDK is imported here (no mabware): a child starts in a blink.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import threading
from collections.abc import Mapping
from typing import Any

import msgpack
from mabware_edge import EdgeClient, Response, UrllibTransport

PULLS, REWARD_SUM = 0, 1  # the columns of a push's sums block (mabware.store._model.SUMS)


def push_totals(body: bytes, experiment: str) -> dict[str, Any]:
    """A push body's replica, seq, and per-arm pulls and reward sums of ``experiment``."""
    wire = msgpack.unpackb(body)
    columns = [c for c in range(64) if wire["columns"] >> c & 1]
    values = struct.unpack(f"<{len(wire['sums']) // 8}d", wire["sums"])
    rows = iter(values[i : i + len(columns)] for i in range(0, len(values), len(columns)))
    pulls: dict[str, float] = {}
    rewards: dict[str, float] = {}
    for name, _version, tally in wire["tallies"]:
        for arm in tally["arms"]:
            row = dict(zip(columns, next(rows), strict=True))
            if name == experiment:
                pulls[arm] = pulls.get(arm, 0.0) + row.get(PULLS, 0.0)
                rewards[arm] = rewards.get(arm, 0.0) + row.get(REWARD_SUM, 0.0)
    return {"replica": wire["replica"], "seq": wire["seq"], "pulls": pulls, "rewards": rewards}


class RecordingTransport:
    """``UrllibTransport`` that keeps every post's (url, body, headers).

    With ``log`` and ``experiment``: before each post one JSON line
    ``{"replica", "seq", "pulls", "rewards"}`` of its body, after a 2xx
    ``{"ack": seq}``, each flushed and fsynced before going on, so a
    SIGKILL leaves at most a torn last line.
    """

    def __init__(self, log: str | None = None, experiment: str | None = None) -> None:
        self.inner = UrllibTransport()
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.experiment = experiment
        self.log = open(log, "a", encoding="utf-8") if log else None  # noqa: SIM115

    def get(self, url: str, headers: Mapping[str, str], timeout: float) -> Response:
        return self.inner.get(url, headers, timeout)

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        with self.lock:
            self.posts.append((url, body, dict(headers)))
        seq = None
        if self.log is not None and self.experiment is not None:
            line = push_totals(body, self.experiment)
            seq = line["seq"]
            self._write(line)
        answer = self.inner.post(url, body, headers, timeout)
        if seq is not None and 200 <= answer.status < 300:
            self._write({"ack": seq})
        return answer

    def _write(self, line: dict[str, Any]) -> None:
        assert self.log is not None
        with self.lock:
            self.log.write(json.dumps(line) + "\n")
            self.log.flush()
            os.fsync(self.log.fileno())


def client(settings: Mapping[str, Any], **options: Any) -> EdgeClient:
    url = settings["url"]
    return EdgeClient(
        f"{url}/edge/snapshot",
        public_key=settings["public_key"],
        read_token=settings["read_token"],
        push_url=f"{url}/sync",
        push_token=settings["push_token"],
        **options,
    )


def count(settings: Mapping[str, Any]) -> None:
    edge = client(settings, refresh="thread", refresh_interval=5.0, push_interval=0.2)
    if not edge.refresh():
        raise SystemExit(f"no snapshot: {dict(edge.errors)} {dict(edge.rejected)}")
    name, tag = settings["experiment"], settings["tag"]
    pulls = rewards = 0
    for i in range(settings["n"]):
        decision = edge.decide(name, f"{tag}-{i}")
        pulls += decision.reason == "assigned"
        rewards += edge.reward(decision, 1.0)
    edge.close()
    print(json.dumps({"pulls": pulls, "rewards": rewards, "errors": dict(edge.errors)}))


def forever(settings: Mapping[str, Any]) -> None:
    name = settings["experiment"]
    transport = RecordingTransport(settings["log"], name)
    edge = client(
        settings, refresh="thread", refresh_interval=5.0, push_interval=0.05, transport=transport
    )
    if not edge.refresh():
        raise SystemExit(f"no snapshot: {dict(edge.errors)} {dict(edge.rejected)}")
    i = 0
    while True:
        i += 1
        edge.reward(edge.decide(name, f"unit-{i}"), 1.0)


if __name__ == "__main__":
    {"count": count, "forever": forever}[sys.argv[1]](json.loads(sys.argv[2]))
