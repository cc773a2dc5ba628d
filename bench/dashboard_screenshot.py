"""Write the README's dashboard screenshot: docs/dashboard.png.

    python bench/dashboard_screenshot.py                 # mabware demo's dashboard after 45 s
    python bench/dashboard_screenshot.py --site --out /tmp/d.png --visitors 3000

By default runs ``mabware demo`` (2 uvicorn workers, file store, loopback
visitors) and, after ``--wait`` seconds, has headless Chromium with
JavaScript blocked take a 1280x1600 screenshot of its dashboard. With
``--site`` it serves ``tests/dashboard/dashboard_site.py`` instead (the page
``tests/dashboard/test_chromium.py`` checks), with simulated history.
Needs Chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from contrib.servers import free_port  # noqa: E402
from dashboard.browser import screenshot, site  # noqa: E402


def demo_screenshot(out: Path, wait: float) -> bytes:
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "mabware", "demo", "--seconds", str(wait + 15), "--port",
         str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(wait)
        return screenshot(f"http://127.0.0.1:{port}/mabware/dashboard/", out)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--site", action="store_true", help="the test site, not the demo")
    parser.add_argument("--visitors", type=int, default=2000, help="with --site")
    parser.add_argument("--wait", type=float, default=45.0, help="seconds of demo traffic")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.site:
        with site(visitors=args.visitors) as url:
            data = screenshot(f"{url}/mabware/", args.out.resolve())
    else:
        data = demo_screenshot(args.out.resolve(), args.wait)
    print(f"wrote {args.out} ({len(data):,} bytes)")


if __name__ == "__main__":
    main()
