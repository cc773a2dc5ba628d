"""What a push-only token may push: tallies of the experiments the registry has.

``mabware serve --push-token`` gives edge clients (``sdk/mabware_edge``) a
token that can push to ``POST /sync`` and do nothing else: it reads no
state, changes no experiment. Its pushes are held to the registry, so a
leaked push token cannot fill the state with experiments or arms that do
not exist: every tally's key (name, version) must name an experiment of
the registry at its current version or an earlier one, and every arm of
the tally must be one of that experiment's arms (arms are only ever added,
so an earlier version's arms are among them). Time buckets are allowed as
any push has them: the drift policies read them.

A push that breaks this is a 422 problem naming the experiment or the arm,
and nothing of it is merged. A client may still push an earlier version's
tally: its counts stay stored for a later report, as the middleware's do.
"""

from __future__ import annotations

from mabware.server._push_body import invalid_push
from mabware.server._service import Service
from mabware.store.merge import Replica


def check_push(push: Replica, service: Service) -> None:
    """Pass if every tally of ``push`` is of a registered experiment; else ProblemError 422.

    The registry is read again once when it seems not to know a name or a
    version (another worker created or reset it a moment ago).
    """
    entries = service.current().entries
    if any(
        name not in entries or version > entries[name].experiment.version
        for name, version in push.tallies
    ):
        entries = service.current(reload=True).entries
    for (name, version), tally in push.tallies.items():
        entry = entries.get(name)
        if entry is None:
            raise invalid_push(f"tallies: experiment {name[:120]!r} is not in the registry")
        current = entry.experiment.version
        if version > current:
            raise invalid_push(
                f"tallies: experiment {name[:120]!r} is at version {current}; "
                f"the push names version {version}"
            )
        unknown = [arm for arm in tally.arms if arm not in entry.experiment.payloads]
        if unknown:
            raise invalid_push(
                f"tallies: experiment {name[:120]!r} has no arm {unknown[0][:120]!r}"
            )
