"""What a shared store holds, as plain data (``mabware report``).

Reads the merged state straight from the backend a store URL names, with
no experiment configuration: every tally carries its arm names. Totals are
summed over live replicas and the retired ones, per experiment and version.
"""

from __future__ import annotations

from typing import Any

from mabware.exceptions import ConfigError
from mabware.store.merge import SharedState, combined_many
from mabware.store.shared import Backend


def open_backend(url: str) -> Backend:
    """The backend behind a shared store URL (``file:``, ``http(s)://``, ``redis://``)."""
    from mabware.store import open_store  # the URL parsing lives there

    store = open_store(url, [], sync_interval=1.0)
    backend: Backend | None = getattr(store, "backend", None)
    if backend is None:
        raise ConfigError(f"{url!r} is not a shared store; nothing to report", payload=url)
    return backend


def summary(state: SharedState, now: float) -> dict[str, Any]:
    """``{"experiments": {name: {"version", "arms": {arm: {...}}}}, "replicas": {...}}``.

    For each experiment the newest version is reported (older versions'
    data stays in the store for a later report); ``replicas`` says how many
    processes pushed and how long ago the freshest one did.
    """
    keys: dict[str, tuple[int, list[str]]] = {}
    for tallies in [r.tallies for r in state.replicas.values()] + [state.retired]:
        for (name, version), tally in tallies.items():
            best = keys.get(name)
            if best is None or version > best[0]:
                keys[name] = (version, list(tally.arms))
            elif version == best[0]:
                best[1].extend(a for a in tally.arms if a not in best[1])
    wanted = [((name, version), arms, 0) for name, (version, arms) in sorted(keys.items())]
    experiments: dict[str, Any] = {}
    for ((name, version), arms, _), stats in zip(wanted, combined_many(state, wanted), strict=True):
        experiments[name] = {
            "version": version,
            "arms": {
                arm: {
                    "pulls": float(stats.pulls[i]),
                    "reward_sum": float(stats.reward_sum[i]),
                    "mean_reward": float(stats.reward_sum[i] / stats.pulls[i])
                    if stats.pulls[i]
                    else None,
                    "errors": float(stats.errors[i]),
                    "responses": float(stats.responses[i]),
                }
                for i, arm in enumerate(arms)
            },
        }
    freshest = max((r.seen for r in state.replicas.values()), default=None)
    return {
        "experiments": experiments,
        "replicas": {
            "live": len(state.replicas),
            "retired": len(state.tombstones),
            "last_push_seconds_ago": None if freshest is None else max(0.0, now - freshest),
        },
    }
