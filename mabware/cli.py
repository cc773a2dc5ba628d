"""The ``mabware`` command line.

One click group, ``main``, and one function per subcommand; a new
subcommand is a new decorated function (``@main.command()``). Commands
print tables with rich on stdout and progress on stderr (only when stderr
is a terminal), and turn bad input into click usage errors (exit code 2,
the option named, no traceback).

``mabware simulate`` plays a policy against Bernoulli arms through the real
decision path (``mabware.simulate.run``) for several seeds and reports the
regret distribution. ``mabware keygen`` prints fresh cookie keys.
``mabware serve`` runs the standalone server (``mabware.server``) under
uvicorn (the ``server`` extra). ``mabware report`` prints what a shared
store holds (``mabware.store.report``).
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mabware import __version__, policies
from mabware.simulate import BernoulliEnvironment, run, seeded_generators, summarise
from mabware.simulate.regret import median_or_none

__all__ = ["main"]

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


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


@click.group()
@click.version_option(__version__, prog_name="mabware")
def main() -> None:
    """mabware: multi-armed-bandit experiments inside any Python web app."""


@main.command()
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
        _fmt(summary.mean),
        _fmt(summary.median),
        _fmt(summary.p10),
        _fmt(summary.p90),
        f"{_fmt(median_convergence, 1)} ({n_converged}/{seeds})",
        _fmt(seconds),
    )
    Console().print(table)

    if json_path is not None:
        document = {
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
        }
        try:
            json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(str(exc), param_hint="'--json'") from None


@main.command()
@click.option(
    "--count",
    type=click.IntRange(min=1, max=100),
    default=1,
    show_default=True,
    help="How many keys to print, one a line.",
)
def keygen(count: int) -> None:
    """Print a fresh secret key for the cookie (32 random bytes, url-safe base64).

    Put a new key first in ``secret_keys`` and keep the old one second
    until the cookies it encrypted have expired (``max_age``). Keep keys out
    of source control and logs.
    """
    for _ in range(count):
        click.echo(secrets.token_urlsafe(32))


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--store",
    "store_url",
    default="file:./mabware.state",
    show_default=True,
    metavar="URL",
    help="Where the merged state lives: file:PATH or memory:.",
)
@click.option(
    "--token",
    envvar="MABWARE_TOKEN",
    show_envvar=True,
    metavar="TOKEN",
    help="Bearer token every request must carry (prefer the environment variable: "
    "a command line is visible to other users).",
)
@click.option(
    "--retention",
    type=click.FloatRange(min=0, min_open=True),
    default=3600.0,
    show_default=True,
    help="Seconds of silence after which a replica is retired.",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request (off by default: at thousands of pushes a second, "
    "the log is much of the work).",
)
def serve(
    host: str, port: int, store_url: str, token: str | None, retention: float, access_log: bool
) -> None:
    """Run the standalone server: POST /sync and GET /snapshot (needs mabware[server])."""
    try:
        import uvicorn
    except ImportError:
        raise click.ClickException(
            "mabware serve needs uvicorn: pip install 'mabware[server]'"
        ) from None
    from mabware.exceptions import ConfigError
    from mabware.server import create_app

    try:
        app = create_app(store_url, token=token, retention=retention)
    except ConfigError as exc:
        raise click.UsageError(exc.message) from None
    except OSError as exc:
        raise click.BadParameter(str(exc), param_hint="'--store'") from None
    if not token and host not in _LOOPBACK:
        click.echo(f"warning: serving on {host} without a token; set MABWARE_TOKEN", err=True)
    uvicorn.run(app, host=host, port=port, access_log=access_log)


@main.command()
@click.option(
    "--store",
    "store_url",
    required=True,
    metavar="URL",
    help="The shared store to read: file:PATH, http(s)://HOST or redis://HOST.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead.")
def report(store_url: str, as_json: bool) -> None:
    """Print the global statistics a shared store holds, per experiment and arm.

    Reads the merged state straight from the backend (no app, no
    experiment configuration needed): pulls and rewards summed over every
    replica, live and retired, for each experiment's newest version.
    """
    from mabware.exceptions import ConfigError
    from mabware.store.merge import StateError
    from mabware.store.report import open_backend, summary

    scheme, _, rest = store_url.partition(":")
    if scheme.lower() == "file" and rest and not Path(rest).expanduser().exists():
        # opening a FileBackend would create the file's directory and lock file
        raise click.BadParameter(f"no state file at {rest}", param_hint="'--store'")
    try:
        backend = open_backend(store_url)
    except ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="'--store'") from None
    try:
        state = backend.read()
    except StateError as exc:
        raise click.ClickException(f"the state in {store_url} is unreadable: {exc}") from None
    except Exception as exc:  # a backend that cannot be reached: no traceback, say why
        raise click.ClickException(
            f"could not read {store_url}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        backend.close()
    doc = summary(state, time.time())
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    replicas = doc["replicas"]
    ago = replicas["last_push_seconds_ago"]
    table = Table(
        title=f"mabware store {_without_password(store_url)}",
        caption=f"{replicas['live']} live replicas, {replicas['retired']} retired; "
        + ("no push yet" if ago is None else f"last push {ago:.1f} s ago"),
    )
    table.add_column("experiment")
    table.add_column("arm")
    for column in ("pulls", "reward_sum", "mean"):
        table.add_column(column, justify="right")
    for name, experiment in doc["experiments"].items():
        for arm, stats in experiment["arms"].items():
            table.add_row(
                f"{name} (v{experiment['version']})",
                arm,
                _count(stats["pulls"]),
                _count(stats["reward_sum"]),
                _fmt(stats["mean_reward"], 4),
            )
    Console().print(table)


def _count(value: float) -> str:
    """A counter as a whole number when it is one (pulls), else with 4 decimals."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.4f}"


def _without_password(url: str) -> str:
    """``url`` with any ``:TOKEN@`` credentials blanked (tables get pasted)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


@main.command()
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after this many seconds (default: run until Ctrl-C).",
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="uvicorn workers."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Loopback port to serve the shop on; 0 picks a free one.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True, max=10_000),
    default=150.0,
    show_default=True,
    help="Visits a second, at most (fewer if the shop answers slower).",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the store's state file here (default: a temporary one, removed at the end).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seeds the visitors' draws (who returns, who buys).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write the summary as JSON to this file.",
)
def demo(
    seconds: float | None,
    workers: int,
    port: int,
    rate: float,
    state: Path | None,
    seed: int,
    json_path: Path | None,
) -> None:
    """Run a small shop with a live experiment and watch it learn (needs mabware[server]).

    Starts the demo shop (mabware.demo.shop) under uvicorn with several
    workers that learn together through a file store, prints its URL and
    the dashboard's, and plays visitors from loopback whose chance to buy
    depends on the page variant they see. At the end (after --seconds, or
    at Ctrl-C) it stops every process and prints what the store learned
    beside the hidden true rates, and the regret.
    """
    import importlib.util

    needed = ("uvicorn", "httpx", "jinja2", "pygal", "prometheus_client")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(
            f"mabware demo needs {', '.join(missing)}: pip install 'mabware[server]'"
        )
    from mabware.demo.run import DemoError, DemoOptions, report, run_demo

    options = DemoOptions(seconds, workers, port, rate, state, seed)
    try:
        result = run_demo(options, out=Console(), err=Console(stderr=True))
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None
    report(result, Console())
    if json_path is not None:
        document = {"mabware_version": __version__, **result.to_json()}
        try:
            json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(str(exc), param_hint="'--json'") from None


if __name__ == "__main__":  # pragma: no cover
    main()
