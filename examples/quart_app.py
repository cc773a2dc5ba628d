"""mabware on Quart: the extension, config keys, a reward route, the report.

Run it from this directory:  hypercorn quart_app:app
"""

import os

from quart import Quart

from mabware import Experiment
from mabware.contrib.quart import Mabware
from mabware.testing import TEST_KEYS

app = Quart(__name__)
# `mabware keygen` prints a key ("new,old" while rotating). The fallback is
# public, for this demo only: never use it in production.
app.config["MABWARE_SECRET_KEYS"] = os.environ.get("MABWARE_SECRET_KEY", TEST_KEYS[0])
app.config["MABWARE_STORE"] = "memory:"
# A response below 400 to /buy rewards the visitor's headline arm with 1.0.
app.config["MABWARE_REWARDS"] = {"/buy": {"headline": 1.0}}

mabware = Mabware(
    app,
    experiments=[
        Experiment(
            "headline",
            {"control": "Welcome back", "bold": "Big sale today"},
            default_arm="control",
        ),
        Experiment("button", {"green": "#2e7d32", "blue": "#1565c0"}),
    ],
)


@app.get("/")
async def home() -> str:
    visit = mabware.arms()
    headline, button = visit["headline"], visit["button"]
    return (
        f"<h1>{headline.value}</h1>"
        f'<a href="/buy" style="background:{button.value}">Buy now</a>'
        f"<!-- arm={headline.arm} button={button.arm} -->"
    )


@app.get("/buy")
async def buy() -> str:
    return "Thank you!"


@app.get("/stats")
async def stats() -> dict[str, object]:
    return mabware.engine.report()
