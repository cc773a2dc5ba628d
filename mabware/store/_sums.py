"""Adding tallies up: the arithmetic behind ``merge.add``, ``combined`` and ``combined_many``.

Arms align by name (a tally's arms missing from the total are left out,
the total's arms no tally knows are zeros) and time buckets by their
absolute index (row k of a tally whose newest bucket is n is bucket
n - k). The common case is cheap: a tally with exactly the total's arms
adds its sums block whole, without index arrays, and a packed replica
whose layout is exactly the one asked for adds all its experiments in
one numpy addition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from mabware._types import FloatArray
from mabware.statistics import Buckets, Statistics
from mabware.store._model import WIDTH, Key, PackedTallies, Tally, part_of, stats_of

#: what ``totals`` is asked for, per experiment: its key, its arms in order, the buckets kept
Wanted = tuple[Key, tuple[str, ...], int]
#: a tally's arms and time buckets (what aligning its buckets needs)
_Timed = tuple[tuple[str, ...], Buckets]


def add(a: Tally, b: Tally) -> Tally:
    """The sum of two tallies of one experiment (arms united, buckets aligned)."""
    arms = a.arms + tuple(x for x in b.arms if x not in a.arms)
    sums = np.zeros((len(arms), WIDTH), dtype=np.float64)
    timed: list[_Timed] = []
    for t in (a, b):
        _add_rows(sums, arms, t.arms, t.sums)
        if t.stats.recent is not None:
            timed.append((t.arms, t.stats.recent))
    depth = max((recent.depth for _, recent in timed), default=0)
    return Tally.of_sums(arms, sums, _buckets(timed, arms, depth) if depth else None)


def totals(sources: Sequence[Mapping[Key, Tally]], wanted: Sequence[Wanted]) -> list[Statistics]:
    """The sum over ``sources`` of each wanted experiment, in ``wanted`` order.

    The results are views of one block (reading them is all anyone does).
    """
    layout = tuple((key, arms) for key, arms, _ in wanted)
    bounds: list[tuple[int, int]] = []
    for _, arms, _ in wanted:
        start = bounds[-1][1] if bounds else 0
        bounds.append((start, start + len(arms)))
    block = np.zeros((bounds[-1][1] if bounds else 0, WIDTH), dtype=np.float64)
    timed: list[list[_Timed]] = [[] for _ in wanted]
    for tallies in sources:
        if isinstance(tallies, PackedTallies) and tallies.layout == layout:
            block += tallies.sums  # a replica running exactly this configuration: one addition
            for i, (_, arms, depth) in enumerate(wanted):
                recent = tallies.recent[i]
                if depth and recent is not None:
                    timed[i].append((arms, recent))
            continue
        for i, (key, arms, depth) in enumerate(wanted):
            part = part_of(tallies, key)
            if part is None:
                continue
            their_arms, rows, recent = part
            start, end = bounds[i]
            _add_rows(block[start:end], arms, their_arms, rows)
            if depth and recent is not None:
                timed[i].append((their_arms, recent))
    return [
        stats_of(block[start:end], _buckets(timed[i], arms, depth) if depth else None)
        for i, ((_, arms, depth), (start, end)) in enumerate(zip(wanted, bounds, strict=True))
    ]


def _aligned(
    arms: tuple[str, ...], theirs: tuple[str, ...]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Index arrays (theirs, ours) of the arms both know."""
    position = {arm: i for i, arm in enumerate(arms)}
    pairs = [(i, position[a]) for i, a in enumerate(theirs) if a in position]
    src = np.fromiter((s for s, _ in pairs), dtype=np.intp, count=len(pairs))
    dst = np.fromiter((d for _, d in pairs), dtype=np.intp, count=len(pairs))
    return src, dst


def _add_rows(
    out: FloatArray, arms: tuple[str, ...], theirs: tuple[str, ...], rows: FloatArray
) -> None:
    """``out`` (one row per arm of ``arms``) += ``rows`` (one per arm of ``theirs``), by name."""
    if theirs == arms:
        out += rows
        return
    src, dst = _aligned(arms, theirs)
    if src.size:
        out[dst] += rows[src]


def _buckets(timed: Sequence[_Timed], arms: tuple[str, ...], depth: int) -> Buckets:
    """``depth`` buckets up to the newest any tally has, each tally's rows added where they fall."""
    newest = max((recent.newest for _, recent in timed), default=0)
    pulls = np.zeros((depth, len(arms)), dtype=np.float64)
    rewards = np.zeros((depth, len(arms)), dtype=np.float64)
    for theirs, recent in timed:
        shift = newest - recent.newest  # row k of the tally is row k + shift of the total
        rows = min(recent.depth, depth - shift)
        if rows <= 0:
            continue
        if theirs == arms:
            pulls[shift : shift + rows] += recent.pulls[:rows]
            rewards[shift : shift + rows] += recent.reward_sum[:rows]
            continue
        src, dst = _aligned(arms, theirs)
        if src.size:
            pulls[shift : shift + rows, dst] += recent.pulls[:rows, src]
            rewards[shift : shift + rows, dst] += recent.reward_sum[:rows, src]
    return Buckets(newest, pulls, rewards)
