"""Spec ``mabware.assign.v1``: a unit id hashed to [0, 1) and walked along a table.

The spec text is the docstring of ``mabware/assign.py``; the vectors in
``tests/vectors/assign.json`` are the contract this module meets bit for
bit. The work is split so the request path does as little as possible:
``prefix`` (the bytes that name the experiment and its version) and
``cumulative`` run once per snapshot, ``unit_u`` once per decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate

try:
    # hashlib.blake2b is this very class (hashlib never takes BLAKE2 from OpenSSL);
    # importing it from here skips hashlib's load of OpenSSL's _hashlib, 2-4 ms of
    # a cold start that needs no other hash
    from _blake2 import blake2b as blake2b  # re-exported: _decide inlines the hash
except ImportError:  # pragma: no cover - an interpreter without CPython's builtin module
    from hashlib import blake2b as blake2b

TAG = b"mabware.assign.v1"
SCALE = 2.0**-53  # keeps the hash's top 53 bits: exact in binary64
SUM_TOLERANCE = 1e-9


def prefix(experiment: str, version: int) -> bytes:
    """The message up to the unit id: tag, then (length, bytes) of name and version."""
    e = experiment.encode("utf-8")
    v = str(version).encode("ascii")
    return TAG + len(e).to_bytes(4, "big") + e + len(v).to_bytes(4, "big") + v


def unit_u(head: bytes, unit_id: str) -> float:
    """The unit's hash in [0, 1) (spec step 1), given ``prefix(experiment, version)``.

    Raises:
        UnicodeEncodeError: a lone surrogate. OverflowError: 4 GiB of id.
    """
    u = unit_id.encode("utf-8")
    digest = blake2b(head + len(u).to_bytes(4, "big") + u, digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) * SCALE


def cumulative(allocation: Sequence[float]) -> tuple[float, ...]:
    """Running sums, the top closed to exactly 1.0 from the last positive arm (step 2).

    The snapshot reader has already checked each entry is a finite float >= 0.

    Raises:
        ValueError: empty, or the sum is off 1 by more than 1e-9.
    """
    sums = list(accumulate(allocation, initial=0.0))  # left to right in binary64: no fsum
    del sums[0]
    last = len(sums) - 1
    while last >= 0 and not allocation[last] > 0.0:
        last -= 1
    if last < 0 or not abs(sums[-1] - 1.0) <= SUM_TOLERANCE:
        raise ValueError("an allocation must be non-empty and sum to 1")
    sums[last:] = [1.0] * (len(sums) - last)
    return tuple(sums)
