"""Every error mabware raises, rooted in one base class.

::

    MabwareError
    ├── ConfigError          (also a ValueError) bad settings, raised at start-up
    ├── RewardError          (also a ValueError) a reward that must not be stored
    └── PolicyError          a policy produced no usable allocation

Configuration errors say what to change. Request-path failures never raise
to the visitor: the engine turns them into a fallback and counts them.
"""

from __future__ import annotations

from typing import Any


class MabwareError(Exception):
    """Base class of every mabware error.

    Attributes:
        payload: the offending value, when there is one (never a secret).
        original_error: the exception this one wraps, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        payload: Any = None,
        original_error: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.payload = payload
        self.original_error = original_error


class ConfigError(MabwareError, ValueError):
    """A setting is out of range or inconsistent; the message names it."""


class RewardError(MabwareError, ValueError):
    """A reward is non-finite, out of the declared range, or for an unknown arm."""


class PolicyError(MabwareError):
    """A policy failed or returned a vector that is not a probability vector."""
