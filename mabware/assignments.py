"""What a handler sees: ``scope["mabware"]`` / ``environ["mabware"]``.

``Assignments`` is a read-only mapping of experiment name to
``Assignment`` for one request, plus ``reward()``. It also carries the
request's cookie state for the engine, which rewrites the cookie only when
something here changed (a new or replaced assignment, a reward flag).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from mabware.cookies import CookieEntry


class Assignment(NamedTuple):
    """The arm one visitor gets in one experiment.

    A named tuple: the request path builds these, and a tuple is cheap.

    Attributes:
        experiment: the experiment's name.
        arm: the arm's name.
        value: the arm's payload (the arm name when the experiment was
            given a list of names).
        decision: the id of the decision that assigned it (0 when the
            visitor is not counted: bots, no consent, disabled experiment).
        counted: False for visitors and experiments that serve the default
            arm without learning; rewards for them are ignored.
    """

    experiment: str
    arm: str
    value: Any
    decision: int
    counted: bool = True


RewardSink = Callable[["Assignments", str, object], bool]


class Assignments(Mapping[str, Assignment]):
    """Every experiment's arm for this request, and a way to reward it.

    ``assignments["headline"].arm`` reads an arm; ``assignments.reward(
    "headline", 1.0)`` rewards it (the value defaults to 1.0 and must lie
    in the experiment's ``reward_range``).
    """

    __slots__ = (
        "_arms",
        "_reward",
        "changed",
        "counted",
        "entries",
        "issued",
        "path",
        "pending",
        "secure",
        "served",
    )

    def __init__(
        self,
        arms: dict[str, Assignment],
        entries: dict[str, CookieEntry],
        *,
        issued: int,
        changed: bool,
        counted: bool,
        secure: bool,
        path: str,
        reward: RewardSink,
        served: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self._arms = arms
        self._reward = reward
        #: cookie entries to write back (experiment -> entry)
        self.entries = entries
        #: issue time of the visitor's cookie
        self.issued = issued
        #: True when the cookie must be rewritten
        self.changed = changed
        #: False for bots and visitors without consent
        self.counted = counted
        #: the request was made over https (the cookie gets ``Secure``)
        self.secure = secure
        #: the request path (reward routes match it)
        self.path = path
        #: (experiment, arm index) of each counted assignment (for the arm SLOs)
        self.served = served
        #: rewards to apply if the response succeeds (``reward_on_success``)
        self.pending: list[tuple[str, object]] = []

    def __getitem__(self, experiment: str) -> Assignment:
        return self._arms[experiment]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arms)

    def __len__(self) -> int:
        return len(self._arms)

    def __repr__(self) -> str:
        arms = ", ".join(f"{name}={a.arm!r}" for name, a in self._arms.items())
        return f"<Assignments {arms}>"

    def reward(self, experiment: str, value: object = 1.0) -> bool:
        """Reward this visitor's arm of ``experiment``.

        Returns True when the reward was stored. False when it was not: a
        visitor who is not counted, a second reward for the same assignment
        under ``reward_mode="once"``, or (outside strict mode) an unknown
        experiment or a value that is not a finite number in range, which
        is also counted and logged once per minute.

        Raises:
            RewardError: in strict mode, for an unknown experiment or a bad value.
        """
        return self._reward(self, experiment, value)

    def reward_on_success(self, experiment: str, value: object = 1.0) -> None:
        """Reward ``experiment`` once this request's response turns out below 400.

        The rule of declarative reward routes, for code that decides per
        view (Flask's ``reward_endpt``): a handler that fails, or an error
        handler that turns the response into a 4xx/5xx, rewards nothing.
        """
        self.pending.append((experiment, value))
