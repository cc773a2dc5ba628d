"""Write the README's dashboard screenshot: docs/dashboard.png.

    python bench/dashboard_screenshot.py                 # docs/dashboard.png
    python bench/dashboard_screenshot.py --out /tmp/d.png --visitors 3000

Serves ``tests/dashboard/dashboard_site.py`` (Starlette + MabwareMiddleware,
memory store, the dashboard mounted at ``/mabware/``) with uvicorn on
loopback, simulates visitors over the last half hour, and has headless
Chromium, JavaScript blocked, take a 1280x1600 screenshot of the page:
the same path ``tests/dashboard/test_chromium.py`` checks.
Needs Chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from dashboard.browser import screenshot, site  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--visitors", type=int, default=2000)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with site(visitors=args.visitors) as url:
        data = screenshot(f"{url}/mabware/", args.out.resolve())
    print(f"wrote {args.out} ({len(data):,} bytes)")


if __name__ == "__main__":
    main()
