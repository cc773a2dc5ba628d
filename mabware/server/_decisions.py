"""``GET /decision`` and ``POST /reward``: the REST API's decisions and their rewards.

A decision walks the published allocation (``mabware.server._publisher``):
the table of the snapshot this worker holds, precomputed once per snapshot
(``mabware.server._published``). A request about an experiment, a version
or arms that snapshot lacks reads the stored snapshot again (and issues
one if that lacks it too) in the thread pool: a worker that just learnt of
a new experiment decides from a snapshot that has it, and answers its
``snapshot_seq``. The pull is counted in the current runtime's store; a
reward too (``mabware.server.api`` has the counting rules).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mabware.server import _decision_ids as decision_ids
from mabware.server import _json as j
from mabware.server._auth import check_bearer, check_reader
from mabware.server._problems import unknown_experiment
from mabware.server._publisher import Publisher
from mabware.server._service import Service


class Decisions:
    """``GET /decision`` and ``POST /reward`` over a ``Service`` and its ``Publisher``.

    Args:
        service: registry, store and runtime.
        publisher: the published allocations decisions walk.
        write_token: bearer token of a reward (None: no check).
        read_token: bearer token that decides (the write token does too).
    """

    def __init__(
        self,
        service: Service,
        publisher: Publisher,
        *,
        write_token: bytes | None,
        read_token: bytes | None,
    ) -> None:
        self.service = service
        self.publisher = publisher
        self._write = write_token
        self._read = read_token
        # reward mode "once": a retry of a rewarded decision is not counted twice
        self._rewarded = decision_ids.Remembered()

    @property
    def routes(self) -> list[Route]:
        return [
            Route("/decision", self.decision, methods=["GET"]),
            Route("/reward", self.reward, methods=["POST"]),
        ]

    async def decision(self, request: Request) -> Response:
        """The arm to show: the published allocation walked by ``unit_id``'s hash, or sampled."""
        check_reader(request, self._read, self._write)
        query = request.query_params
        for field in query:
            if field not in ("experiment_id", "unit_id"):
                j.invalid(
                    field,
                    query[field],
                    "no such parameter; the parameters are experiment_id, unit_id",
                    status=400,
                )
        if "experiment_id" not in query:
            j.missing("experiment_id", "the experiment's id")
        unit_id = j.string(query, "unit_id", required=False, max_length=256)  # text, any id
        name = query["experiment_id"]
        runtime = self.service.knowing(name)  # perhaps created by another worker just now
        if name not in runtime.entries:
            raise unknown_experiment(name)
        published = self.publisher.current()
        table = published.table(runtime.entries[name].experiment) if published else None
        if table is None:  # an experiment, version or arm this worker's snapshot lacks
            runtime, published = await run_in_threadpool(self.publisher.catch_up, name)
            if name not in runtime.entries:
                raise unknown_experiment(name)
            table = published.table(runtime.entries[name].experiment) if published else None
        d = runtime.decide(name, unit_id, self.service.clock(), table)
        entry = runtime.entries[name]
        decision_id = decision_ids.new(d.version, d.arm_index, d.propensity)
        return JSONResponse(
            {
                "experiment_id": name,
                "arm_id": d.arm,
                "strategy": entry.strategy,
                "metadata": {"arms": list(entry.experiment.arm_names)},
                "decision_id": decision_id,
                "propensity": d.propensity,
                "version": d.version,
                "counted": d.counted,
                "snapshot_seq": published.seq if published else 0,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def reward(self, request: Request) -> Response:
        """Count a reward for an arm, or for the arm of a decision id."""
        check_bearer(request, self._write)
        doc = await j.json_object(request)
        j.only(doc, ("experiment_id", "arm_id", "decision_id", "reward", "value"))
        name = j.string(doc, "experiment_id")
        assert name is not None
        runtime = self.service.knowing(name)
        if name not in runtime.entries:
            j.invalid("experiment_id", name, "the id of an existing experiment")
        exp = runtime.entries[name].experiment
        low, high = exp.reward_range
        if "reward" in doc and "value" in doc:
            j.invalid("value", doc["value"], "either reward or value, not both")
        value = j.number(doc, "value" if "value" in doc else "reward", low, high)
        arm_index, propensity, decision_id = decision_ids.rewarded_arm(doc, exp)
        if (
            decision_id is not None
            and exp.reward_mode == "once"
            and not self._rewarded.first(decision_id)
        ):
            counted = False  # a retry of a reward already counted here
        else:
            runtime.reward(name, arm_index, value, propensity, self.service.clock())
            counted = True
        return JSONResponse(
            {
                "status": "ok",  # the MAB E-Commerce Optimizer's answer starts so
                "experiment_id": name,
                "arm_id": exp.arm_names[arm_index],
                "strategy": runtime.entries[name].strategy,
                "reward": value,
                "decision_id": decision_id,
                "counted": counted,
            }
        )
