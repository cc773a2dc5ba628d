"""A Flask app with two experiments; from examples/ run ``gunicorn -w 1 flask_app:app``.

GET / shows the visitor's headline, GET /buy rewards it, GET /stats is this
process's report. One worker: the ``memory:`` store is per process.
"""

import os

from flask import Flask, jsonify, render_template_string

from mabware import Experiment
from mabware.contrib.flask import Mabware
from mabware.testing import TEST_KEYS

app = Flask(__name__)
app.config["MABWARE_SECRET_KEYS"] = [
    # DEMO FALLBACK: TEST_KEYS are public. Never use them in production: set
    # MABWARE_SECRET_KEY to the output of `mabware keygen`.
    os.environ.get("MABWARE_SECRET_KEY", TEST_KEYS[0])
]
app.config["MABWARE_STORE"] = "memory:"

mab = Mabware(app)
mab.add_bandit(
    "headline",
    Experiment(
        "headline", {"control": "Welcome back", "bold": "Big sale today"}, default_arm="control"
    ),
)
mab.add_bandit("button", Experiment("button", {"green": "#2e7d32", "orange": "#ef6c00"}))

PAGE = """<h1>{{ headline }}</h1>
<a href="/buy" style="background: {{ button }}">Buy now</a>
<p>arm={{ arm }}</p>"""


@app.get("/")
@mab.choose_arm("headline")
@mab.choose_arm("button")
def home(headline: str, button: str) -> str:
    arm = mab.arms()["headline"].arm
    return render_template_string(PAGE, headline=headline, button=button, arm=arm)


@app.get("/buy")
@mab.reward_endpt("headline", 1.0)
def buy() -> str:
    return "Thank you!"


@app.get("/stats")
def stats() -> object:
    return jsonify(mab.engine.report())
