"""mabware on FastAPI: two experiments as dependencies, a reward, the report.

Run it from this directory:  uvicorn fastapi_app:app
"""

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from mabware import Assignment, Assignments, Engine, Experiment, MabwareMiddleware
from mabware.contrib.fastapi import arm, assignments
from mabware.testing import TEST_KEYS

# `mabware keygen` prints a key. The fallback is public, for this demo only:
# never use it in production.
SECRET_KEY = os.environ.get("MABWARE_SECRET_KEY", TEST_KEYS[0])

# Built here rather than inside the middleware so /stats can read it.
engine = Engine(
    [
        Experiment(
            "headline",
            {"control": "Welcome back", "bold": "Big sale today"},
            default_arm="control",
        ),
        Experiment("button", {"green": "#2e7d32", "blue": "#1565c0"}),
    ],
    secret_keys=[SECRET_KEY],
    store="memory:",
)

app = FastAPI()
app.add_middleware(MabwareMiddleware, engine=engine)


@app.get("/", response_class=HTMLResponse)
async def home(
    headline: Annotated[Assignment, Depends(arm("headline"))],
    button: Annotated[Assignment, Depends(arm("button"))],
) -> str:
    return (
        f"<h1>{headline.value}</h1>"
        f'<a href="/buy" style="background:{button.value}">Buy now</a>'
        f"<!-- arm={headline.arm} button={button.arm} -->"
    )


@app.get("/buy")
async def buy(arms: Annotated[Assignments, Depends(assignments)]) -> dict[str, bool]:
    return {"rewarded": arms.reward("headline", 1.0)}


@app.get("/stats")
async def stats() -> dict[str, Any]:
    return engine.report()
