"""uvicorn serving the demo shop, in its own session: start, wait, stop, clean up.

uvicorn runs as ``python -m uvicorn --factory mabware.demo.shop:create_app``
(the command a user would type) in a new session, for two reasons. A
terminal's Ctrl-C goes to the whole foreground process group; uvicorn
outside it lets the demo stop the traffic first and the server second,
so no visit is cut off half-counted. And a session is one process group
(the master, its workers, multiprocessing's helper), so whatever is left
after the master exits can be killed in one ``killpg``.

The listening socket is bound here and handed over with ``--fd``: the port
is known before uvicorn starts (``--port 0`` needs no guess-and-retry),
a port in use is an error before anything is spawned, and connections
made before the workers are up wait in the backlog instead of failing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

import mabware

__all__ = ["DemoError", "ShopServer"]

APP = "mabware.demo.shop:create_app"


class DemoError(RuntimeError):
    """The demo could not run; the message says why."""


class ShopServer:
    """The shop under uvicorn with ``workers`` processes on a loopback port.

    Args:
        workers: uvicorn worker processes.
        port: the port to listen on; 0 picks a free one.
        env: settings for the shop (``MABWARE_DEMO_*``), added to this
            process's environment.
        log: where uvicorn's output goes.
        host: the loopback address to bind.
    """

    def __init__(
        self,
        *,
        workers: int,
        port: int,
        env: Mapping[str, str],
        log: Path,
        host: str = "127.0.0.1",
    ) -> None:
        self.workers = workers
        self.port = port
        self.env = dict(env)
        self.log = log
        self.host = host
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Bind the port and start uvicorn on it.

        Raises:
            DemoError: the port cannot be bound.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self.host, self.port))
            sock.listen(2048)  # uvicorn's default backlog
        except OSError as exc:
            sock.close()
            raise DemoError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        self.port = sock.getsockname()[1]
        fd = sock.fileno()
        argv = [
            sys.executable, "-m", "uvicorn", "--factory", APP, "--fd", str(fd),
            "--workers", str(self.workers), "--lifespan", "on",
            "--log-level", "warning", "--no-access-log",
            "--timeout-graceful-shutdown", "10",  # a browser's open connection must not hold us
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        env["PYTHONPATH"] = _python_path(env.get("PYTHONPATH"))
        try:
            with open(self.log, "ab") as out:
                self.proc = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    pass_fds=(fd,),
                    start_new_session=True,
                )
        finally:
            sock.close()  # uvicorn holds its own copy

    def wait_ready(self, timeout: float = 60.0, all_workers: float = 10.0) -> set[int]:
        """Wait until the shop answers; the worker pids seen.

        After the first answer, probes on for up to ``all_workers`` seconds
        until every worker has answered once, so the traffic starts on all
        of them (a worker that is slow to start only delays that).

        Raises:
            DemoError: uvicorn exited, or nothing answered within ``timeout``.
        """
        pids: set[int] = set()
        deadline = time.monotonic() + timeout
        first: float | None = None
        limits = httpx.Limits(max_keepalive_connections=0)  # a new connection, any worker
        with httpx.Client(base_url=self.url, timeout=5.0, limits=limits) as client:
            while len(pids) < self.workers:
                now = time.monotonic()
                if first is not None and now > first + all_workers:
                    break
                if self.proc is None or self.proc.poll() is not None:
                    raise DemoError(f"the shop's server exited at start-up:\n{self.log_tail()}")
                if now > deadline:
                    raise DemoError(
                        f"the shop did not answer in {timeout:.0f} s:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    answer = client.get("/healthz")
                    if answer.status_code == 200:
                        pids.add(int(answer.headers["x-demo-pid"]))
                        first = now if first is None else first
                time.sleep(0.02)
        return pids

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop uvicorn gracefully; its exit code, None if it had to be killed.

        SIGTERM to the master, which stops its workers the same way; each
        worker's lifespan shutdown flushes its last counts to the store.
        Whatever is left in the session after that (or after ``timeout``,
        or if this wait is itself interrupted) is SIGKILLed.
        """
        proc = self.proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            # the master's pid is the session's process group id
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of uvicorn's output."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> ShopServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _python_path(current: str | None) -> str:
    """``PYTHONPATH`` for uvicorn, so it imports this very mabware.

    Installed, mabware is on uvicorn's path anyway; run from a source
    checkout (the tests, ``python -m mabware`` in the repository) it may
    be importable here only through the current directory, so the
    checkout goes first. A site-packages directory is never added: ahead
    of the standard library it could shadow it.
    """
    root = Path(mabware.__file__).resolve().parent.parent
    if root.name in ("site-packages", "dist-packages"):
        return current or ""
    return os.pathsep.join(filter(None, [str(root), current]))
