"""The engine's settings, checked at start-up with messages that say what to change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mabware.exceptions import ConfigError, RewardError
from mabware.experiment import Experiment


def check_experiments(experiments: Sequence[Experiment]) -> None:
    """Experiments: at least one, all ``Experiment``, unique names."""
    names: set[str] = set()
    for exp in experiments:
        if not isinstance(exp, Experiment):
            raise ConfigError(f"experiments must be mabware.Experiment objects, got {exp!r}")
        if exp.name in names:
            raise ConfigError(f"two experiments are named {exp.name!r}; names must be unique")
        names.add(exp.name)
    if not names:
        raise ConfigError("experiments is empty: give at least one mabware.Experiment")


def check_routes(
    routes: Mapping[str, Mapping[str, float]], experiments: Mapping[str, Experiment]
) -> dict[str, tuple[tuple[str, float], ...]]:
    """Validate reward routes at start-up: known experiments, values in range."""
    checked: dict[str, tuple[tuple[str, float], ...]] = {}
    for path, targets in routes.items():
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"reward route paths must start with '/', got {path!r}")
        pairs = []
        for name, value in dict(targets).items():
            if name not in experiments:
                raise ConfigError(
                    f"reward route {path!r} names unknown experiment {name!r}; "
                    f"experiments are {sorted(experiments)}"
                )
            try:
                pairs.append((name, experiments[name].check_reward(value)))
            except RewardError as exc:
                raise ConfigError(f"reward route {path!r}: {exc}") from exc
        checked[path] = tuple(pairs)
    return checked
