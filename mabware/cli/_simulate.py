"""``mabware simulate``: a policy against Bernoulli arms, and its option parsers."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mabware import __version__, policies
from mabware.cli._output import number, write_json
from mabware.simulate import BernoulliEnvironment, run, seeded_generators, summarise
from mabware.simulate.regret import median_or_none

#: runs with at least this many rounds in total get a progress bar
PROGRESS_MIN_ROUNDS = 50_000


def _policy_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A registered policy name, in any case, with ``-`` and ``_`` alike."""
    name = value.strip().lower().replace("_", "-")
    if name not in policies.POLICIES:
        choices = ", ".join(sorted(policies.POLICIES))
        raise click.BadParameter(f"{value!r} is not a policy; choose one of {choices}")
    return name


def _rates(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, ...]:
    """A comma-separated list of at least two Bernoulli rates in [0, 1]."""
    try:
        rates = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None
    if len(rates) < 2:
        raise click.BadParameter(f"needs at least 2 arms, got {value!r}")
    bad = [r for r in rates if not 0.0 <= r <= 1.0]  # NaN fails too
    if bad:
        raise click.BadParameter(f"every rate must be in [0, 1], got {bad[0]!r}")
    return rates


def _parse_value(text: str) -> Any:
    """``0.1`` -> float, ``3`` -> int, ``true`` -> bool, ``null`` -> None, else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_params(items: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="'--param'")
        params[key] = _parse_value(text.strip())
    return params


def _make_policy(name: str, params: dict[str, Any]) -> policies.Policy:
    try:
        return policies.from_name(name, **params)
    except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
        raise click.BadParameter(
            f"{name} does not accept {params}: {exc}", param_hint="'--param'"
        ) from None


@click.command()
@click.option(
    "--policy",
    "policy_name",
    callback=_policy_name,
    default="thompson",
    show_default=True,
    metavar="NAME",
    help=f"Policy to simulate: {', '.join(sorted(policies.POLICIES))}.",
)
@click.option(
    "--param",
    "param_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="A policy setting, e.g. --param epsilon=0.05 (repeatable; values parsed as JSON).",
)
@click.option(
    "--rates",
    metavar="P1,P2,...",
    callback=_rates,
    default="0.04,0.05,0.07",
    show_default=True,
    help="Comma-separated Bernoulli reward rate of each arm.",
)
@click.option("--rounds", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option(
    "--seeds", type=click.IntRange(min=1), default=20, show_default=True, help="Replicate runs."
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Recompute the allocation every N rounds (1 = after every reward).",
)
@click.option(
    "--reward-seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Base seed: seed s uses default_rng([base, s]) for rewards, [base, s, 1] for the policy.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write the results as JSON to this file.",
)
def simulate(
    policy_name: str,
    param_items: tuple[str, ...],
    rates: tuple[float, ...],
    rounds: int,
    seeds: int,
    batch: int,
    reward_seed: int,
    json_path: Path | None,
) -> None:
    """Simulate a policy on Bernoulli arms and report its pseudo-regret."""
    name = policy_name
    params = _parse_params(param_items)
    policy = _make_policy(name, params)
    err = Console(stderr=True)
    started = time.perf_counter()
    finals: list[float] = []
    converged: list[int | None] = []
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal or rounds * seeds < PROGRESS_MIN_ROUNDS,
    )
    with progress:
        task = progress.add_task(f"simulating {name}", total=seeds)
        for seed in range(seeds):
            env_rng, policy_rng = seeded_generators(reward_seed, seed)
            env = BernoulliEnvironment(rates, rng=env_rng)
            result = run(policy, env, rounds, batch=batch, rng=policy_rng)
            finals.append(result.final_regret)
            converged.append(result.convergence)
            progress.advance(task)
    seconds = time.perf_counter() - started

    summary = summarise(finals)
    median_convergence = median_or_none(converged)
    n_converged = sum(c is not None for c in converged)
    settings = ", ".join(f"{k}={v}" for k, v in policy.params().items())
    table = Table(
        title=f"{name}: {seeds} seeds x {rounds} rounds on rates {list(rates)}, batch {batch}",
        caption=f"final pseudo-regret per seed; {settings}",
    )
    for column in ("mean regret", "median", "p10", "p90", "median convergence", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(
        number(summary.mean),
        number(summary.median),
        number(summary.p10),
        number(summary.p90),
        f"{number(median_convergence, 1)} ({n_converged}/{seeds})",
        number(seconds),
    )
    Console().print(table)

    if json_path is not None:
        write_json(
            json_path,
            {
                "mabware_version": __version__,
                "policy": name,
                "params": policy.params(),
                "rates": list(rates),
                "rounds": rounds,
                "seeds": seeds,
                "batch": batch,
                "reward_seed": reward_seed,
                "mean_regret": summary.mean,
                "median_regret": summary.median,
                "p10_regret": summary.p10,
                "p90_regret": summary.p90,
                "per_seed": finals,
                "convergence": converged,
                "median_convergence": median_convergence,
                "seconds": seconds,
            },
        )
