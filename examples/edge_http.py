"""A stdlib HTTP server deciding with the edge SDK, sticky through the middleware's cookie.

For a service that is not an ASGI or WSGI app: the same decisions and the
same encrypted cookie as ``MabwareMiddleware`` (a visitor can move between
this service and a mabware app and keep their arm, given the same cookie
keys), decided locally from the signed snapshot, with pulls and rewards
pushed to the server. No JavaScript: the arm is chosen here, on the server.

    GET /     the page, with the visitor's headline (and a Set-Cookie when it changes)
    GET /buy  a reward of 1.0 for the visitor's headline arm

Needs a running ``mabware serve`` with an experiment "headline" (see
edge_job.py for the set-up), then:

    MABWARE_URL=http://127.0.0.1:8000 MABWARE_PUBLIC_KEY=... MABWARE_PUSH_TOKEN=PUSH \\
        MABWARE_SECRET_KEY=<mabware keygen> python edge_http.py 8080
"""

from __future__ import annotations

import html
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mabware_edge import EdgeClient

EXPERIMENT = "headline"


def make_client() -> EdgeClient:
    url = os.environ.get("MABWARE_URL", "http://127.0.0.1:8000")
    return EdgeClient(
        f"{url}/edge/snapshot",
        public_key=os.environ["MABWARE_PUBLIC_KEY"],
        read_token=os.environ.get("MABWARE_READ_TOKEN"),
        push_url=f"{url}/sync",
        push_token=os.environ.get("MABWARE_PUSH_TOKEN"),
        secret_keys=[os.environ["MABWARE_SECRET_KEY"]],  # the middleware's keys, newest first
        refresh_interval=float(os.environ.get("EDGE_REFRESH_INTERVAL", "10")),
        push_interval=float(os.environ.get("EDGE_PUSH_INTERVAL", "10")),
        defaults={EXPERIMENT: "control"},  # served until the first snapshot arrives
    )


edge: EdgeClient | None = None  # made in main(): one per process


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert edge is not None
        cookie = edge.read_cookie(self.headers.get("Cookie"))  # a bad cookie is a new visitor
        if self.path == "/buy":
            kept = cookie.get(EXPERIMENT)
            counted = kept is not None and edge.reward(kept, 1.0)
            self._send(200, "Thank you!" if counted else "Nothing to reward.", None)
            return
        if self.path != "/":
            self._send(404, "Not found", None)
            return
        d = edge.decide(EXPERIMENT, cookie=cookie)  # the cookie's arm, or a new one
        page = f"<h1>{html.escape(str(d.value))}</h1><!-- arm={d.arm} reason={d.reason} -->"
        self._send(200, page, edge.cookie_header([d], secure=False, cookie=cookie))

    def _send(self, status: int, body: str, set_cookie: str | None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if set_cookie is not None:  # only when the cookie changes, as the middleware does
            self.send_header("Set-Cookie", set_cookie)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: one line per request would drown the example's output."""


def main() -> None:
    global edge
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    edge = make_client()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    # SIGTERM (a process manager stopping us) ends the loop like Ctrl-C: the last push runs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"edge_http on http://127.0.0.1:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        edge.close()  # pushes what the server does not have yet


if __name__ == "__main__":
    main()
