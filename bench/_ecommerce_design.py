"""The MAB E-Commerce Optimizer's serving design, rebuilt for a side-by-side benchmark.

Not its code: a minimal app with the same shape, as its README describes
it: a FastAPI-style JSON service whose state is in Redis, where a decision
reads every arm's counters from Redis (one round trip per arm) and draws
from each arm's Beta posterior, and a reward updates the arm's counters.
Its endpoints and bodies are the ones mabware's server accepts, so one
load generator drives both.

Run: ``ECOMMERCE_REDIS=redis://127.0.0.1:6379/0 uvicorn --factory
_ecommerce_design:create_app``.
"""

from __future__ import annotations

import json
import os
import random

import redis.asyncio as redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def create_app() -> Starlette:
    client = redis.Redis.from_url(os.environ["ECOMMERCE_REDIS"])
    rng = random.Random()

    async def create(request: Request) -> JSONResponse:
        doc = await request.json()
        name, arms = doc["experiment_id"], doc["arm_ids"]
        await client.set(f"exp:{name}", json.dumps(arms))
        for arm in arms:
            await client.hset(f"exp:{name}:arm:{arm}", mapping={"pulls": 0, "reward": 0.0})
        return JSONResponse({"experiment_id": name, "arm_ids": arms}, status_code=201)

    async def decision(request: Request) -> JSONResponse:
        name = request.query_params["experiment_id"]
        arms = json.loads(await client.get(f"exp:{name}"))
        best, best_draw = arms[0], -1.0
        for arm in arms:  # one round trip per arm
            stats = await client.hgetall(f"exp:{name}:arm:{arm}")
            pulls, reward = float(stats[b"pulls"]), float(stats[b"reward"])
            draw = rng.betavariate(1.0 + reward, 1.0 + max(pulls - reward, 0.0))
            if draw > best_draw:
                best, best_draw = arm, draw
        return JSONResponse({"experiment_id": name, "arm_id": best, "strategy": "thompson"})

    async def reward(request: Request) -> JSONResponse:
        doc = await request.json()
        key = f"exp:{doc['experiment_id']}:arm:{doc['arm_id']}"
        value = float(doc["reward"])
        if not 0.0 <= value <= 1.0:
            return JSONResponse({"detail": "reward out of range"}, status_code=422)
        async with client.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "pulls", 1)
            pipe.hincrbyfloat(key, "reward", value)
            await pipe.execute()
        return JSONResponse({"experiment_id": doc["experiment_id"], "arm_id": doc["arm_id"]})

    return Starlette(
        routes=[
            Route("/experiments", create, methods=["POST"]),
            Route("/decision", decision, methods=["GET"]),
            Route("/reward", reward, methods=["POST"]),
        ]
    )
