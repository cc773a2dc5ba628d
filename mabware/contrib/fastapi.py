"""FastAPI: dependencies over the pure ASGI middleware.

::

    from fastapi import Depends, FastAPI
    from mabware import Assignment, Assignments, Experiment, MabwareMiddleware
    from mabware.contrib.fastapi import arm, assignments

    app = FastAPI()
    app.add_middleware(MabwareMiddleware, experiments=[...], secret_keys=[...])

    @app.get("/")
    async def home(headline: Assignment = Depends(arm("headline"))):
        return {"headline": headline.value}

    @app.post("/buy")
    async def buy(arms: Assignments = Depends(assignments)):
        arms.reward("headline", 1.0)

``arm("name")`` cannot know the app's experiments when the route is
declared (the middleware may be added later, and is built on the first ASGI
call), so an unknown name raises ``ConfigError`` on the first request to
that route, naming the experiments that exist. As with Starlette (see
``mabware.contrib.starlette``), prefer an ``Engine`` built at import:
``app.add_middleware(MabwareMiddleware, engine=engine)``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from mabware.assignments import Assignment, Assignments
from mabware.contrib.starlette import arms
from mabware.exceptions import ConfigError

__all__ = ["arm", "assignments"]


def assignments(request: Request) -> Assignments:
    """Dependency: every experiment's assignment for this request.

    Raises:
        ConfigError: the app has no ``MabwareMiddleware``.
    """
    return arms(request)


def arm(experiment: str) -> Callable[[Request], Assignment]:
    """Dependency factory: this request's ``Assignment`` in ``experiment``.

    ``headline: Assignment = Depends(arm("headline"))``.

    Raises:
        ConfigError: (at request time) ``experiment`` is not one of the
            middleware's experiments, or the app has no ``MabwareMiddleware``.
    """

    def dependency(request: Request) -> Assignment:
        visit = arms(request)
        try:
            return visit[experiment]
        except KeyError:
            raise ConfigError(
                f"arm({experiment!r}): no such experiment; experiments are {sorted(visit)}",
                payload=experiment,
            ) from None

    return dependency
