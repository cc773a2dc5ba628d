"""The REST API: the MAB E-Commerce Optimizer's endpoints, and what mabware adds.

Clients of that project work unchanged (same paths, same body names:
``experiment_id``, ``arm_ids``, ``strategy`` in any case,
``strategy_params``, ``arm_id``, ``reward``; create answers 201, a
duplicate 409). What mabware adds sits beside those names: decision ids,
propensities, reward ranges, a ``value`` alias for ``reward``, per-arm
statistics, arm switches and resets.

Counting: ``GET /decision`` counts a pull of the arm it answers (unless the
experiment is disabled); ``POST /reward`` adds a reward to an arm's sum.
An arm's mean is therefore reward per decision, and a client that reports
only successes (reward 1.0) and stays silent on failures learns correctly.

Deciding: ``GET /decision`` walks the *published* allocation, the one the
edge snapshot carries (``mabware.server._publisher``), and answers its
``snapshot_seq``: a decision of the server and one of an edge client with
the same snapshot agree. So the server learns at the snapshot cadence
(``snapshot_interval``, 10 s by default): rewards are counted at once, but
the allocation they move is published with the next snapshot. A change of
an experiment is published before its answer. ``GET /decision`` and
``POST /reward`` live in ``mabware.server._decisions``.

Every refusal is an RFC 9457 problem naming the field (``mabware.server._json``),
and a refused request changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mabware.server import _json as j
from mabware.server import _settings as settings
from mabware.server._auth import check_bearer, check_reader
from mabware.server._decisions import Decisions
from mabware.server._problems import ProblemError, unknown_experiment
from mabware.server._publisher import Publisher
from mabware.server._registry import Change, Entries, Entry
from mabware.server._service import Runtime, Service


class Api:
    """The REST endpoints over a ``Service``; ``routes`` mounts them.

    Args:
        service: registry, store and runtime.
        publisher: the published allocations decisions walk.
        write_token: bearer token of every mutation (None: no check).
        read_token: bearer token that reads (the write token reads too).
    """

    def __init__(
        self,
        service: Service,
        publisher: Publisher,
        *,
        write_token: str | None,
        read_token: str | None,
    ) -> None:
        self.service = service
        self.publisher = publisher
        self._write = write_token.encode() if write_token else None
        self._read = read_token.encode() if read_token else None
        self._decisions = Decisions(
            service, publisher, write_token=self._write, read_token=self._read
        )

    @property
    def health_route(self) -> Route:
        """``GET /health``, apart: whether it needs a token is the server's setting."""
        return Route("/health", self.health, methods=["GET"])

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            # one route per path, so a 405's Allow lists every method of the path
            Route("/experiments", self.experiments, methods=["GET", "POST"]),
            Route("/experiments/{experiment_id}", self.show, methods=["GET"]),
            Route("/experiments/{experiment_id}/arms", self.add_arms, methods=["POST"]),
            Route(
                "/experiments/{experiment_id}/arms/{arm_id}/{switch:str}",
                self.switch_arm,
                methods=["POST"],
            ),
            Route("/experiments/{experiment_id}/reset", self.reset, methods=["POST"]),
            *self._decisions.routes,
            Route("/config", self.config, methods=["POST"]),
        ]

    # -- auth ----------------------------------------------------------------------

    def _may_read(self, request: Request) -> None:
        check_reader(request, self._read, self._write)

    def _may_write(self, request: Request) -> None:
        check_bearer(request, self._write)

    # -- endpoints -----------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        """Always 200 while the process serves: ``{"status": "ok"}``."""
        return JSONResponse({"status": "ok"})

    async def experiments(self, request: Request) -> Response:
        """``GET``: list; ``POST``: create."""
        if request.method == "POST":
            return await self.create(request)
        return await self.list_experiments(request)

    async def create(self, request: Request) -> Response:
        self._may_write(request)
        doc = await j.json_object(request)
        j.only(doc, settings.CREATE_FIELDS)
        name = j.string(doc, "experiment_id", ident=True)
        assert name is not None
        arms = j.string_list(doc, "arm_ids", min_items=2)
        entry = settings.entry(doc, name, arms, self.service.clock())

        def add(entries: Entries) -> Entries:
            if name in entries:
                raise ProblemError(409, f"experiment {name!r} exists already")
            return {**entries, name: entry}

        runtime = await self._update(add)
        # quoted: a header is latin-1, an id is any text but "/"
        location = f"/experiments/{quote(name, safe='')}"
        body = self._body(runtime, name)
        return JSONResponse(body, status_code=201, headers={"Location": location})

    async def list_experiments(self, request: Request) -> Response:
        self._may_read(request)
        runtime = self.service.current()
        return JSONResponse({"experiments": [self._body(runtime, n) for n in runtime.entries]})

    async def show(self, request: Request) -> Response:
        self._may_read(request)
        runtime, name = self._located(request.path_params["experiment_id"])
        return JSONResponse(self._body(runtime, name))

    async def add_arms(self, request: Request) -> Response:
        self._may_write(request)
        runtime, name = self._located(request.path_params["experiment_id"])
        doc = await j.json_object(request)
        j.only(doc, ("arm_ids",))
        new = j.string_list(doc, "arm_ids", min_items=1)
        known = runtime.entries[name].experiment.arm_names
        for arm in new:
            if arm in known:
                j.invalid("arm_ids", new, f"arms not in the experiment yet ({arm!r} is)")

        def add(entries: Entries) -> Entries:
            entry = _existing(entries, name)
            exp = entry.experiment
            arms = {**exp.payloads, **dict.fromkeys(new)}
            exp = settings.replaced(exp, ("arm_ids", new), arms=arms)
            return {**entries, name: replace(entry, experiment=exp)}

        return JSONResponse(self._body(await self._update(add), name))

    async def config(self, request: Request) -> Response:
        self._may_write(request)
        doc = await j.json_object(request)
        j.only(doc, ("experiment_id", "strategy", "strategy_params"))
        name = j.string(doc, "experiment_id")
        assert name is not None
        if name not in self.service.knowing(name).entries:
            j.invalid("experiment_id", name, "the id of an existing experiment")
        strategy = settings.strategy(doc, required=True)
        params = j.mapping(doc, "strategy_params")
        policy = settings.policy(strategy, params)

        def swap(entries: Entries) -> Entries:
            entry = _existing(entries, name)
            exp = settings.replaced(entry.experiment, ("strategy", strategy), policy=policy)
            return {
                **entries,
                name: replace(entry, experiment=exp, strategy=strategy, strategy_params=params),
            }

        return JSONResponse(self._body(await self._update(swap), name))

    async def switch_arm(self, request: Request) -> Response:
        self._may_write(request)
        runtime, name = self._located(request.path_params["experiment_id"])
        arm, switch = request.path_params["arm_id"], request.path_params["switch"]
        if switch not in ("disable", "enable"):
            raise ProblemError(404, f"no such action {switch!r}; use disable or enable")
        if arm not in runtime.entries[name].experiment.arms:
            raise ProblemError(404, f"experiment {name!r} has no arm {arm!r}")

        def flip(entries: Entries) -> Entries:
            entry = _existing(entries, name)
            off = entry.disabled_arms - {arm} if switch == "enable" else entry.disabled_arms | {arm}
            return {**entries, name: replace(entry, disabled_arms=frozenset(off))}

        return JSONResponse(self._body(await self._update(flip), name))

    async def reset(self, request: Request) -> Response:
        """A new version: visitors and decisions are assigned afresh; old data stays stored."""
        self._may_write(request)
        _, name = self._located(request.path_params["experiment_id"])

        def bump(entries: Entries) -> Entries:
            entry = _existing(entries, name)
            exp = settings.replaced(entry.experiment, version=entry.experiment.version + 1)
            return {**entries, name: replace(entry, experiment=exp)}

        return JSONResponse(self._body(await self._update(bump), name))

    # -- helpers -------------------------------------------------------------------

    async def _update(self, change: Change) -> Runtime:
        """Change the registry, then publish at once: the answer's change is in the snapshot."""
        runtime = self.service.update(change)
        await run_in_threadpool(self.publisher.changed)
        return runtime

    def _located(self, name: str) -> tuple[Runtime, str]:
        runtime = self.service.knowing(name)  # perhaps created by another worker just now
        if name not in runtime.entries:
            raise unknown_experiment(name)
        return runtime, name

    def _body(self, runtime: Runtime, name: str) -> dict[str, Any]:
        entry = runtime.entries[name]
        summary = runtime.summary(name, self.service.clock()).to_json()
        return {
            "experiment_id": name,
            "arm_ids": list(entry.experiment.arm_names),
            "strategy": entry.strategy,
            "strategy_params": dict(entry.strategy_params),
            "disabled_arms": sorted(entry.disabled_arms),
            **{k: v for k, v in summary.items() if k != "experiment"},
        }


def _existing(entries: Entries, name: str) -> Entry:
    """The entry, or 404 if another worker removed it meanwhile."""
    if name not in entries:
        raise unknown_experiment(name)
    return entries[name]
