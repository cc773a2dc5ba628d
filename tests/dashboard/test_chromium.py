"""A real headless Chromium, JavaScript off, reads the dashboard of an app under uvicorn.

The app (``dashboard_site.py``) is Starlette + ``MabwareMiddleware`` on a
memory store with the dashboard mounted at ``/mabware/``. Chromium is a
Debian package (``apt-get install chromium``); without it these tests
fail, saying so: they are the proof that the page needs no script.
"""

from __future__ import annotations

import struct
from pathlib import Path

import httpx

from .browser import cells, chromium_binary, dump_dom, screenshot, site

PNG = b"\x89PNG\r\n\x1a\n"
FIELDS = ("pulls", "reward_sum", "mean", "interval", "p_best", "share", "status")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG, data[:16]
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_chromium_is_installed() -> None:
    assert Path(chromium_binary()).exists()


def test_the_dashboard_works_with_javascript_off(tmp_path: Path) -> None:
    with site(visitors=1500) as url, httpx.Client(base_url=url, timeout=30.0) as client:
        # the control: this browser really runs no script
        dom = dump_dom(f"{url}/js-probe")
        assert '<p id="probe">script did not run</p>' in dom, dom
        assert "script ran" not in dom  # what the script would have written

        summaries = client.get("/summaries").json()
        dom = dump_dom(f"{url}/mabware/")
        page = cells(dom)
        assert page.experiments == ["headline", "basket"]
        expected = {
            (s["experiment"], a["arm"], field): a[field]
            for s in summaries
            for a in s["arms"]
            for field in FIELDS
        }
        assert page.values == expected
        assert "<script" not in dom.lower()
        assert dom.count("<svg") == 4
        assert page.meta_refresh == ["5"]
        statuses = {a["arm"]: a["status"] for a in summaries[0]["arms"]}
        assert statuses['<b>&"'] == "slo_reward_rate"  # a guardrail at work, on the page
        assert sum(a["pulls"] for a in summaries[0]["arms"]) >= 1500
        assert client.get("/summaries").json() == summaries  # the browser counted nothing

        path = tmp_path / "dashboard.png"
        data = screenshot(f"{url}/mabware/", path)
        assert png_size(data) == (1280, 1600)
        assert len(data) > 20_000  # a page of tables and charts, not a blank one
