"""A real headless Chromium with JavaScript off, and the dashboard site under uvicorn.

Used by ``test_chromium.py`` and ``bench/dashboard_screenshot.py``.

JavaScript is switched off with the profile's content setting
``javascript: 2`` (block: Settings > Privacy > Site settings > JavaScript),
written into a fresh ``--user-data-dir`` for every run. Blink's own switch,
``--blink-settings=scriptEnabled=false``, cannot be used with this Chromium
(Debian 156, new headless mode): ``--dump-dom`` and ``--screenshot`` then
exit 0 having produced nothing, as headless mode reads the page through
script itself (the content setting blocks the page's scripts only).
``/js-probe`` on the site is the control that JavaScript really is off.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
from contrib.servers import free_port, running

HERE = Path(__file__).resolve().parent
INSTALL = "Chromium is required: apt-get install chromium (Debian), then rerun"
WINDOW = "--window-size=1280,1600"


def chromium_binary() -> str:
    """The Chromium executable; AssertionError naming the package when absent."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found is not None, INSTALL
    return found


def chromium(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium once, JavaScript blocked, in a throwaway profile."""
    with tempfile.TemporaryDirectory(prefix="mabware-chromium-") as profile:
        default = Path(profile, "Default")
        default.mkdir()
        prefs = {"profile": {"default_content_setting_values": {"javascript": 2}}}
        (default / "Preferences").write_text(json.dumps(prefs))
        argv = [
            chromium_binary(),
            "--headless",
            "--no-sandbox",  # root in a container: the sandbox cannot start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ]
        return subprocess.run(argv, capture_output=True, timeout=timeout, check=False)


def dump_dom(url: str) -> str:
    """The DOM after load, scripts blocked."""
    done = chromium("--dump-dom", url)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def screenshot(url: str, path: Path) -> bytes:
    """Write a 1280x1600 PNG of ``url`` to ``path``; return its bytes."""
    path.unlink(missing_ok=True)
    done = chromium(f"--screenshot={path}", WINDOW, url)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert path.exists(), f"no screenshot written: {done.stderr.decode(errors='replace')[-2000:]}"
    return path.read_bytes()


@contextlib.contextmanager
def site(visitors: int = 1500) -> Iterator[str]:
    """``dashboard_site.py`` under uvicorn on loopback, ``visitors`` simulated; yield the URL."""
    port = free_port()
    argv = [
        "uvicorn",
        "dashboard_site:app",
        "--app-dir",
        str(HERE),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "asyncio",
        "--log-level",
        "warning",
    ]
    with running(argv, port) as url:
        done = httpx.get(f"{url}/simulate", params={"visitors": visitors}, timeout=120.0)
        assert done.status_code == 200, done.text
        yield url


class Cells(HTMLParser):
    """Collects the dashboard's machine-readable values.

    ``values[(experiment, arm, field)]`` is a ``data-value`` parsed as JSON
    (``status`` stays text); ``attributes`` is every attribute name seen
    and ``tags`` every tag, for the no-script checks.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[tuple[str, str, str], object] = {}
        self.experiments: list[str] = []
        self.attributes: set[str] = set()
        self.tags: set[str] = set()
        self.meta_refresh: list[str] = []
        self._experiment = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        found = {name: value or "" for name, value in attrs}
        self.attributes.update(found)
        if tag == "section" and "data-experiment" in found:
            self._experiment = found["data-experiment"]
            self.experiments.append(self._experiment)
        if tag == "meta" and found.get("http-equiv", "").lower() == "refresh":
            self.meta_refresh.append(found.get("content", ""))
        if "data-field" in found and "data-arm" in found and "data-value" in found:
            raw = found["data-value"]
            field = found["data-field"]
            value = raw if field == "status" else json.loads(raw)
            self.values[(self._experiment, found["data-arm"], field)] = value


def cells(html: str) -> Cells:
    """Parse a dashboard page with the standard library's HTML parser."""
    parser = Cells()
    parser.feed(html)
    parser.close()
    return parser
