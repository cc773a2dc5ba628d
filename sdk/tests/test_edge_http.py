"""The default transport against a real HTTP server on loopback (stdlib http.server)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from edge_support import PUBLIC_KEY, decode_push, signed

from mabware_edge import EdgeClient


class Server(ThreadingHTTPServer):
    snapshot_path: Path
    pushes: list[tuple[bytes, dict[str, str]]]
    gets: list[dict[str, str]]
    retire_next: bool


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.gets.append(dict(self.headers))
        if self.path != "/edge/snapshot":
            self.send_error(404)
            return
        data = self.server.snapshot_path.read_bytes()
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Type", "application/msgpack")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.pushes.append((body, dict(self.headers)))
        if self.server.retire_next:
            self.server.retire_next = False
            problem = json.dumps(
                {"type": "tag:mabware,2025:problem:retired-replica", "folded_seq": 1}
            ).encode()
            self.send_response(409)
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Content-Length", str(len(problem)))
            self.end_headers()
            self.wfile.write(problem)
            return
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.snapshot_path = tmp_path / "snapshot.bin"
    httpd.snapshot_path.write_bytes(signed(1, time.time()))
    httpd.pushes, httpd.gets, httpd.retire_next = [], [], False
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_fetch_304_push_and_retire_over_loopback(server: Server, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{server.server_address[1]}"
    edge = EdgeClient(
        f"{base}/edge/snapshot",
        public_key=PUBLIC_KEY,
        read_token="r",
        push_url=f"{base}/sync",
        push_token="p",
        refresh="manual",
        cache_path=tmp_path / "cache.snap",
    )
    assert edge.refresh() is True
    assert edge.refresh() is True  # 304
    assert server.gets[0]["Authorization"] == "Bearer r"
    assert "If-None-Match" in server.gets[1]
    assert (tmp_path / "cache.snap").read_bytes() == server.snapshot_path.read_bytes()
    server.snapshot_path.write_bytes(signed(2, time.time()))
    assert edge.refresh() is True
    assert edge.snapshot is not None
    assert edge.snapshot.seq == 2
    d = edge.decide("headline", "user-42")
    assert d.reason == "assigned"
    assert edge.reward(d, 1.0)
    assert edge.push() is True
    body, headers = server.pushes[0]
    assert headers["Content-Type"] == "application/msgpack"
    assert headers["Authorization"] == "Bearer p"
    assert decode_push(body)["decoded"][("headline", 1)][d.arm][:2] == (1.0, 1.0)  # type: ignore[index]
    first_id = edge.replica_id
    edge.decide("headline", "user-43")
    server.retire_next = True
    assert edge.push() is True  # 409, then again at once under a new id
    assert edge.replica_id != first_id
    again = decode_push(server.pushes[-1][0])
    assert (again["replica"], again["seq"]) == (edge.replica_id, 1)
    assert sum(row[0] for row in again["decoded"][("headline", 1)].values()) == 1.0
    server.snapshot_path.write_bytes(b"garbage")
    assert edge.refresh() is False
    assert edge.rejected == {"malformed": 1}
    edge.close()


def test_unreachable_server_is_counted_not_raised(server: Server) -> None:
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    edge = EdgeClient(
        f"http://127.0.0.1:{port}/edge/snapshot",
        public_key=PUBLIC_KEY,
        push_url=f"http://127.0.0.1:{port}/sync",
        refresh="manual",
        timeout=1.0,
        defaults={"headline": "control"},
    )
    assert edge.refresh() is False
    assert edge.errors["refresh:network"] == 1
    assert edge.decide("headline").arm == "control"
    edge.close()
