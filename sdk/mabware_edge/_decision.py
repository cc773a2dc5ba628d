"""What ``decide`` answers, and what ``read_cookie`` reads.

``CookieEntry`` and ``MAX_AGE_LIMIT`` belong to the cookie spec
(``mabware_edge._cookie``) but live here, with ``Cookie``: so a client
without ``secret_keys`` never imports the codec and its ciphers.
"""

# No ``from __future__ import annotations`` here, unlike the other modules: under it
# NamedTuple compile()s each field's annotation string, and the first compile() in a
# process sets up CPython's AST types (~1 ms). Every annotation here evaluates at
# import as it is: nothing in this module refers ahead.

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

MAX_AGE_LIMIT = 34_560_000  # 400 days: the cookie spec's longest lifetime

#: why a decision is what it is (``Decision.reason``)
ASSIGNED = "assigned"  # hashed from the unit id (spec mabware.assign.v1)
SAMPLED = "sampled"  # drawn from the allocation with the rng
COOKIE = "cookie"  # kept from the visitor's cookie
STALE = "stale"  # the snapshot is older than stale_after: the default arm
NO_SNAPSHOT = "no_snapshot"  # none yet: the arm from ``defaults``, else None
UNKNOWN_EXPERIMENT = "unknown_experiment"  # not in the snapshot: None
INELIGIBLE = "ineligible"  # eligible=False (a bot, no consent): the default arm
DISABLED = "disabled"  # switched off by an operator: the default arm
FALLBACK = "fallback"  # a guardrail (or an error here) sent traffic to the default arm
REASONS = (
    ASSIGNED,
    SAMPLED,
    COOKIE,
    STALE,
    NO_SNAPSHOT,
    UNKNOWN_EXPERIMENT,
    INELIGIBLE,
    DISABLED,
    FALLBACK,
)
#: the reasons whose decisions are learned from (a pull is counted for the first two)
COUNTED = frozenset({ASSIGNED, SAMPLED, COOKIE})


class CookieEntry(NamedTuple):
    """One experiment's assignment as the cookie carries it (spec step 2).

    Attributes:
        arm: the arm's name.
        version: the experiment version it was assigned under.
        decision: the decision id, ``0 .. 2**63 - 1``.
        assigned: unix seconds when it was assigned.
        rewarded: a ``once`` reward was counted for it.
    """

    arm: str
    version: int
    decision: int
    assigned: int
    rewarded: bool = False


class Decision(NamedTuple):
    """One experiment's arm for one visitor, and where it came from.

    A named tuple: immutable, slotted, and built several times faster than
    a frozen dataclass, which matters on the request path.

    Attributes:
        experiment: the experiment's name.
        arm: the arm's name; None when there is none to give (see ``reason``).
        value: the arm's payload from the snapshot (None without a snapshot).
        decision_id: a random id in ``0 .. 2**63 - 1``; ``EdgeClient.reward`` takes it.
        propensity: the probability the allocation gave this arm (1.0 for a
            default-arm fallback, 0.0 without an arm): what an off-policy
            evaluation divides by.
        snapshot_seq: the seq of the snapshot decided from (None: no snapshot).
        reason: one of ``assigned``, ``sampled``, ``cookie``, ``stale``,
            ``no_snapshot``, ``unknown_experiment``, ``ineligible``,
            ``disabled``, ``fallback``.
        version: the experiment version decided under (None: not in a snapshot).
        assigned: unix seconds when the arm was assigned (kept from a cookie).
    """

    experiment: str
    arm: str | None
    value: Any
    decision_id: int
    propensity: float
    snapshot_seq: int | None
    reason: str
    version: int | None
    assigned: int


class Cookie(Mapping[str, Decision]):
    """The visitor's cookie: its decisions still honoured, by experiment.

    A decision is honoured while its experiment is in the snapshot with the
    same version and its arm still exists. ``entries`` keeps every entry
    as decoded, also those of experiments this process does not know, so
    ``EdgeClient.cookie_header`` writes them back unchanged.

    Attributes:
        token: the cookie value read, or None if there was none.
        issued: when the cookie was first issued (unix seconds; 0 if none).
        entries: every decoded entry, by experiment name.
        reason: why the cookie was refused (``malformed``, ``auth``,
            ``expired``, ...), or None.
        rotated: it was encrypted under an older key; rewrite it.
    """

    __slots__ = ("_decisions", "entries", "issued", "reason", "rotated", "token")

    def __init__(
        self,
        decisions: Mapping[str, Decision],
        *,
        token: str | None = None,
        issued: int = 0,
        entries: Mapping[str, CookieEntry] | None = None,
        reason: str | None = None,
        rotated: bool = False,
    ) -> None:
        self._decisions = dict(decisions)
        self.token, self.issued, self.reason, self.rotated = token, issued, reason, rotated
        self.entries: Mapping[str, CookieEntry] = dict(entries or {})

    def __getitem__(self, experiment: str) -> Decision:
        return self._decisions[experiment]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decisions)

    def __len__(self) -> int:
        return len(self._decisions)

    def __repr__(self) -> str:
        state = f"refused: {self.reason}" if self.reason else f"{len(self.entries)} entries"
        return f"Cookie({state}, honoured={sorted(self._decisions)})"
