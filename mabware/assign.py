"""Map a visitor to an arm: by hashing a unit id, or by sampling.

Serving turns an allocation (a probability vector over the arms, in arm
order) into one arm per visitor. A logged-in visitor, whose app supplies a
unit id, is assigned deterministically, so every process, and the edge SDK,
gives that unit the same arm for the same allocation and experiment
version. An anonymous visitor is assigned by sampling a random number. Both
paths walk the same precomputed cumulative table.

Typical use: ``table = cumulative(allocation)`` once per allocation change,
then ``assign_unit(table, experiment, version, unit_id)`` or
``sample(table, rng)`` per request. Both are plain Python with no numpy
call: one bisect over a tuple, plus one BLAKE2b for ``assign_unit``.

Specification ``mabware.assign.v1``
-----------------------------------

This text and ``tests/vectors/assign.json`` are the contract that every
implementation (this module, the edge SDK, any port) must meet bit for bit.
All floats are IEEE 754 binary64; all arithmetic is round-to-nearest-even.

1. ``unit_hash(experiment, version, unit_id) -> u``.
   ``experiment`` and ``unit_id`` are Unicode strings; ``version`` is an
   integer with ``0 <= version <= 2**63 - 1``. Each of the three fields is
   turned into bytes: ``experiment`` and ``unit_id`` as their UTF-8
   encoding, exactly as given (no Unicode normalisation, no trimming, no
   case folding; the empty string is allowed); ``version`` as its shortest
   decimal ASCII form (``0``, ``7``, ``12``; no sign, no leading zeros).
   A field longer than ``2**32 - 1`` bytes, or a string that cannot be
   encoded as UTF-8 (a lone surrogate), is rejected. The message is::

       message = b"mabware.assign.v1"
                 + len(E).to_4_bytes_big_endian() + E
                 + len(V).to_4_bytes_big_endian() + V
                 + len(U).to_4_bytes_big_endian() + U

   where E, V, U are the three byte strings and each length prefix is an
   unsigned 32-bit big-endian integer (so ``("ab", "c")`` and ``("a",
   "bc")`` give different messages). Then::

       digest = BLAKE2b(message, digest_size=8, no key, no salt, no person)
       h = digest read as an unsigned 64-bit big-endian integer
       u = (h >> 11) * 2**-53

   ``u`` keeps the top 53 bits of ``h``, so it is exact in binary64 and
   ``0 <= u < 1``. (``(h >> 11) / 9007199254740992.0`` is the same value.)

2. ``cumulative(allocation) -> c``. ``allocation`` is a non-empty list of
   finite numbers ``p[0..n-1]``, each ``>= 0``. Running sums in arm order
   with plain binary64 addition, left to right: ``s = 0.0``; for each
   ``i``: ``s = s + p[i]``; ``c[i] = s``. The final ``s`` must satisfy
   ``|s - 1| <= 1e-9``, otherwise the allocation is rejected. Then, with
   ``k`` the largest index such that ``p[k] > 0``, every ``c[i]`` with
   ``i >= k`` is set to exactly ``1.0``. This closes any rounding gap at the
   top and keeps trailing zero-probability arms unreachable. (There is no
   clamping elsewhere: an entry before ``k`` may exceed 1 by a rounding
   error; step 3 is still well defined.)

3. ``walk(c, u) -> i``. The arm is the smallest index ``i`` with
   ``u < c[i]`` (strictly less: ``u`` equal to a boundary belongs to the
   next arm). Since ``0 <= u < 1`` and ``c[k] = 1.0``, such an ``i`` always
   exists and ``i <= k``. An arm with ``p[i] = 0`` is never returned: its
   entry equals the one before it (or is 0 for the first arm). Any search
   that finds this index is conforming; this module uses
   ``bisect.bisect_right``, which is correct because ``u < c[i]`` is false
   then true along ``i``.

4. A deterministic assignment is ``walk(cumulative(p), unit_hash(e, v,
   unit_id))``. A sampled one is ``walk(cumulative(p), r)`` with ``r``
   uniform on [0, 1) from the caller's random source.

A change to any step is a new spec id (``mabware.assign.v2``) with its own
vector file; ``v1`` vectors are never regenerated.

Errors: invalid input raises ``mabware.exceptions.ConfigError``, a
``ValueError``, with a message naming the problem.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate
from numbers import Real
from typing import TYPE_CHECKING

from mabware.exceptions import ConfigError

if TYPE_CHECKING:
    # Only for annotations: the request path imports no numpy.
    from mabware._types import RandomSource

__all__ = [
    "MAX_VERSION",
    "SPEC",
    "SUM_TOLERANCE",
    "assign_unit",
    "cumulative",
    "sample",
    "unit_hash",
    "walk",
]

#: Spec id of the hash and walk above; also the first bytes of every message.
SPEC = "mabware.assign.v1"

#: Largest accepted experiment version (fits a signed 64-bit integer).
MAX_VERSION = 2**63 - 1

#: How far the running sum of an allocation may be from 1.
SUM_TOLERANCE = 1e-9

_TAG = SPEC.encode("ascii")
_SCALE = 2.0**-53
_blake2b = hashlib.blake2b


def unit_hash(experiment: str, version: int, unit_id: str) -> float:
    """Hash (experiment, version, unit id) to a float in [0, 1) (spec step 1).

    Args:
        experiment: the experiment name.
        version: the experiment version (its salt), ``0 <= version < 2**63``.
        unit_id: the app's stable id for the visitor, e.g. a user id.

    Returns:
        A multiple of ``2**-53`` in ``[0, 1)``, uniform over units.

    Raises:
        ConfigError: a name is not a ``str`` or not UTF-8 encodable, or the
            version is not an ``int`` in range.
    """
    # type() checks: cheaper than isinstance, and they reject bool versions
    # (str(True) would hash as "True") and str subclasses alike.
    if type(version) is not int or not 0 <= version <= MAX_VERSION:
        raise ConfigError(
            f"experiment version must be an int in [0, 2**63 - 1], got {version!r}",
            payload=version,
        )
    if type(experiment) is not str:
        raise ConfigError(
            f"experiment name must be a str, got {type(experiment).__name__}",
            payload=experiment,
        )
    if type(unit_id) is not str:
        raise ConfigError(
            f"unit id must be a str, got {type(unit_id).__name__}; "
            "convert it (e.g. str(user.id)) before assigning",
            payload=unit_id,
        )
    try:
        e = experiment.encode("utf-8")
        v = str(version).encode("ascii")
        u = unit_id.encode("utf-8")
        message = b"".join(
            (
                _TAG,
                len(e).to_bytes(4, "big"),
                e,
                len(v).to_bytes(4, "big"),
                v,
                len(u).to_bytes(4, "big"),
                u,
            )
        )
    except UnicodeEncodeError as exc:
        raise ConfigError(
            "experiment name and unit id must be encodable as UTF-8 "
            f"(lone surrogate?): {exc.reason} at position {exc.start}",
            original_error=exc,
        ) from exc
    except OverflowError as exc:
        raise ConfigError(
            "experiment name and unit id must be at most 2**32 - 1 bytes of UTF-8",
            original_error=exc,
        ) from exc
    h = int.from_bytes(_blake2b(message, digest_size=8).digest(), "big")
    return (h >> 11) * _SCALE


def cumulative(allocation: Iterable[float]) -> tuple[float, ...]:
    """Build the table that :func:`walk` searches (spec step 2).

    Call it once per allocation change, not per request.

    Args:
        allocation: probabilities in arm order, each finite and ``>= 0``,
            summing to 1 within ``1e-9``. Numpy arrays are accepted.

    Returns:
        The running sums as Python floats, with every entry from the last
        positive arm on set to exactly ``1.0``.

    Raises:
        ConfigError: the allocation is empty, has an entry that is not a
            finite non-negative number, or does not sum to 1.
    """
    values = allocation if isinstance(allocation, list | tuple) else list(allocation)
    # Fast path for what Experiment.decide passes, a list of floats: the same
    # left-to-right sums from 0.0 (accumulate adds exactly as the loop below;
    # starting at 0.0 turns a leading -0.0 into 0.0 as the loop does), with
    # the checks done in bulk. Anything unusual falls through to the loop,
    # which also words the errors.
    if values and set(map(type, values)) == {float}:
        sums = list(accumulate(values, initial=0.0))
        del sums[0]
        s = sums[-1]
        if min(values) >= 0.0 and abs(s - 1.0) <= SUM_TOLERANCE:  # NaN fails, inf fails
            last_positive = len(values) - 1
            while not values[last_positive] > 0.0:
                last_positive -= 1
            sums[last_positive:] = [1.0] * (len(sums) - last_positive)
            return tuple(sums)
    sums = []
    s = 0.0
    last_positive = -1
    for i, p in enumerate(values):
        if type(p) is not float:  # the common case skips the slow ABC check
            if isinstance(p, bool) or not isinstance(p, Real):
                raise ConfigError(
                    f"allocation[{i}] must be a number, got {type(p).__name__}", payload=p
                )
            try:
                p = float(p)
            except OverflowError:  # an int beyond the float range
                p = math.inf
        if not math.isfinite(p) or p < 0.0:
            raise ConfigError(f"allocation[{i}] must be finite and >= 0, got {p!r}", payload=p)
        s += p
        sums.append(s)
        if p > 0.0:
            last_positive = i
    if not sums:
        raise ConfigError("allocation is empty: an experiment needs at least one arm")
    if not abs(s - 1.0) <= SUM_TOLERANCE:
        raise ConfigError(
            f"allocation must sum to 1 (within {SUM_TOLERANCE:g}), sums to {s!r}", payload=s
        )
    for i in range(last_positive, len(sums)):
        sums[i] = 1.0
    return tuple(sums)


def walk(table: Sequence[float], u: float) -> int:
    """Return the first arm whose cumulative entry exceeds ``u`` (spec step 3).

    Args:
        table: a table from :func:`cumulative` (not re-validated).
        u: a number in ``[0, 1)``.

    Returns:
        An arm index with positive probability.

    Raises:
        ConfigError: ``u`` is outside ``[0, 1)`` (or NaN).
    """
    if not 0.0 <= u < 1.0:
        raise ConfigError(f"u must be in [0, 1), got {u!r}", payload=u)
    return bisect_right(table, u)


def assign_unit(table: Sequence[float], experiment: str, version: int, unit_id: str) -> int:
    """Assign a unit deterministically: ``walk(table, unit_hash(...))``.

    The same (experiment, version, unit id) and table give the same arm in
    every process and in the edge SDK. Bumping ``version`` reshuffles units.

    Args:
        table: a table from :func:`cumulative`.
        experiment: the experiment name.
        version: the experiment version, ``0 <= version < 2**63``.
        unit_id: the app's stable id for the visitor.

    Returns:
        An arm index with positive probability.

    Raises:
        ConfigError: as :func:`unit_hash`.
    """
    # unit_hash is always in [0, 1): skip walk's range check.
    return bisect_right(table, unit_hash(experiment, version, unit_id))


def sample(table: Sequence[float], rng: RandomSource) -> int:
    """Draw an arm at random with the table's probabilities.

    Args:
        table: a table from :func:`cumulative`.
        rng: anything with ``random() -> float`` in ``[0, 1)``, e.g. a
            ``random.Random`` seeded once per process.

    Returns:
        An arm index with positive probability.

    Raises:
        ConfigError: ``rng.random()`` returned a value outside ``[0, 1)``.
    """
    u = rng.random()
    if not 0.0 <= u < 1.0:
        raise ConfigError(f"rng.random() must be in [0, 1), got {u!r}", payload=u)
    return bisect_right(table, u)
