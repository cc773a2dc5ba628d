"""schemathesis against a real mabware server: the tox env ``schemathesis``.

Starts ``create_app`` (a file store in a temp dir, a write token) under
uvicorn on a free loopback port, then runs ``schemathesis run`` on its
``/openapi.json`` with ``schemathesis.toml`` beside this file: every check
schemathesis has (all are on by default in 4.x), negative data refused
with 400/404/422, and the stateful phase following the document's links
(create -> decision -> reward, ...).

Exits non-zero when schemathesis finds anything, and also when it tested
fewer operations than the document has or ran no stateful scenario: a run
that reaches nothing must not pass.

    python tests/schemathesis/run.py [--max-examples N] [--seed N] [extra schemathesis args]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKEN = "schemathesis-token"
# A signing key, so that GET /edge/snapshot answers its snapshot (not the 404 of a
# server without one); a short snapshot interval, so that it changes during the run.
SERVER = """
import json, sys, uvicorn
from mabware.edge_snapshot import generate_signing_keys
from mabware.server import create_app
app = create_app("file:" + sys.argv[1], token=sys.argv[2], sync_interval=0.2,
                 signing_key=json.dumps(generate_signing_keys()), snapshot_interval=1.0)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(url: str, server: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with {server.returncode} before answering")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"the server did not answer {url}/health within {timeout:.0f} s")


FLOW = ("POST /experiments -> [201]", "GET /decision -> [200]")
#: extra stateful-only runs allowed when a run's walks missed a link of FLOW
STATEFUL_RETRIES = 3


def _check_report(paths: list[Path], operations: int) -> list[str]:
    """What the ndjson event streams say was not reached (each request is an interaction)."""
    tested: set[str] = set()
    transitions: dict[str, int] = {}
    lines = [line for path in paths if path.exists() for line in path.read_text().splitlines()]
    if not lines:
        return ["no report"]
    for line in lines:
        finished = json.loads(line).get("ScenarioFinished")
        if not finished or not isinstance(finished.get("recorder"), dict):
            continue
        recorder = finished["recorder"]
        for case_id, case in recorder.get("cases", {}).items():
            if case_id not in recorder.get("interactions", {}):
                continue  # generated, never sent
            tested.add(f"{case['value']['method']} {case['value']['path']}")
            if case.get("is_transition_applied"):
                name = case["transition"]["id"]
                transitions[name] = transitions.get(name, 0) + 1
    for name, count in sorted(transitions.items()):
        print(f"run.py: link followed {count:4d} x {name}")
    problems = []
    if len(tested) < operations:
        problems.append(f"only {len(tested)} of {operations} operations were tested")
    for start in FLOW:
        if not any(name.startswith(start) for name in transitions):
            problems.append(f"the stateful phase never followed a link from {start}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=40)
    parser.add_argument("--seed", type=int, default=None)
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="mabware-schemathesis-") as tmp:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(Path(tmp, "server.log"), "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(Path(tmp, "state")), TOKEN, str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_up(url, server)
            with urllib.request.urlopen(url + "/openapi.json") as response:
                document = json.load(response)
            operations = sum(len(methods) for methods in document["paths"].values())
            events = Path(tmp, "events.ndjson")
            command = [
                sys.executable, "-m", "schemathesis.cli",
                "--config-file", str(HERE / "schemathesis.toml"),
                "run", f"{url}/openapi.json",
                "--header", f"Authorization: Bearer {TOKEN}",
                "--max-examples", str(args.max_examples),
                "--report", "ndjson", "--report-ndjson-path", str(events),
                "--no-color",
                *(["--seed", str(args.seed)] if args.seed is not None else []),
                *extra,
            ]  # fmt: skip
            env = {**os.environ, "SCHEMATHESIS_HOOKS": "hooks"}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
            status = subprocess.run(command, env=env, check=False).returncode
            reports = [events]
            problems = _check_report(reports, operations)
            # Which links a walk takes depends on the server's answers (sampled
            # arms), so a run may miss one: walk again (stateful phase only, a
            # new seed) until create -> decision -> reward was followed. Every
            # extra run's failures count like the first's.
            for attempt in range(1, STATEFUL_RETRIES + 1):
                if not any("never followed a link" in p for p in problems):
                    break
                print(f"run.py: walking the links again ({attempt} of {STATEFUL_RETRIES})")
                again = Path(tmp, f"events-{attempt}.ndjson")
                seed = (args.seed or 0) + attempt
                rerun = [*command[: command.index("--report")], "--phases", "stateful",
                         "--report", "ndjson", "--report-ndjson-path", str(again),
                         "--no-color", "--seed", str(seed), *extra]  # fmt: skip
                status = status or subprocess.run(rerun, env=env, check=False).returncode
                reports.append(again)
                problems = _check_report(reports, operations)
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
            server_log = Path(tmp, "server.log").read_text(errors="replace")
        if "Traceback" in server_log:
            problems.append("the server logged a traceback:\n" + server_log[-4000:])
    for problem in problems:
        print(f"run.py: {problem}", file=sys.stderr)
    return status or (1 if problems else 0)


if __name__ == "__main__":
    sys.exit(main())
