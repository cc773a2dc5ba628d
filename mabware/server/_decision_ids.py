"""Decision ids: what ``GET /decision`` answers and ``POST /reward`` reads back.

A decision id carries what a reward needs to be counted right without any
server-side memory of the decision: the experiment version it was made
under (a reset makes older ids stale), the arm's index and its propensity
(in millionths, for inverse-propensity estimates), and 48 random bits that
make it unique. ``Remembered`` is the one memory there is: ids rewarded
recently in this worker, so that a retried reward (reward mode ``once``)
is not counted twice.
"""

from __future__ import annotations

import collections
import re
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from mabware.experiment import Experiment
from mabware.server import _json as j

#: a decision id: version, arm index, propensity in millionths, 48 random bits
DECISION_ID_PATTERN = r"^([0-9]{1,9})-([0-9]{1,4})-([0-9]{1,7})-[0-9a-f]{12}$"
_DECISION_ID = re.compile(DECISION_ID_PATTERN)
#: decisions rewarded recently, per worker
_REMEMBERED = 100_000


def new(version: int, arm_index: int, propensity: float) -> str:
    """A fresh id for a decision of arm ``arm_index`` under ``version``."""
    return f"{version}-{arm_index}-{round(propensity * 1_000_000)}-{secrets.token_hex(6)}"


def rewarded_arm(doc: Mapping[str, Any], exp: Experiment) -> tuple[int, float | None, str | None]:
    """(arm index, propensity, decision id) from ``arm_id`` or ``decision_id``; 422 otherwise."""
    if "decision_id" in doc:
        decision_id = j.string(doc, "decision_id", max_length=64)
        assert decision_id is not None
        match = _DECISION_ID.fullmatch(decision_id)
        if match is None:
            j.invalid("decision_id", decision_id, "a decision_id from GET /decision")
        version, index, millionths = (int(g) for g in match.groups())
        if version != exp.version or index >= len(exp.arms):
            j.invalid(
                "decision_id",
                decision_id,
                f"a decision of version {exp.version} (the experiment was reset)",
            )
        if "arm_id" in doc and doc["arm_id"] != exp.arm_names[index]:
            j.invalid("arm_id", doc["arm_id"], f"the decision's arm, {exp.arm_names[index]!r}")
        return index, max(millionths, 1) / 1_000_000, decision_id
    if "arm_id" not in doc:
        j.missing("arm_id", "the arm's id, or a decision_id from GET /decision")
    arm = j.string(doc, "arm_id")
    if arm is None or arm not in exp.arms:
        j.invalid("arm_id", arm, f"one of the experiment's arms: {', '.join(exp.arm_names)}")
    return exp.arm_index(arm), None, None


class Remembered:
    """The decision ids rewarded recently in this worker (the last 100,000)."""

    def __init__(self) -> None:
        self._ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def first(self, decision_id: str) -> bool:
        """True the first time ``decision_id`` is seen here."""
        with self._lock:
            if decision_id in self._ids:
                return False
            self._ids[decision_id] = None
            if len(self._ids) > _REMEMBERED:
                self._ids.popitem(last=False)
            return True
