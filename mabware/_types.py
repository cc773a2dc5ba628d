"""Shared type aliases and protocols (stdlib and numpy typing only)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class RandomSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1).

    Both ``numpy.random.Generator`` and ``random.Random`` qualify; the
    request path uses the stdlib one so that no numpy call happens per
    request.
    """

    def random(self) -> float: ...
