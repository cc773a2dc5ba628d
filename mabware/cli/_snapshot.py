"""``mabware snapshot``: write the signed edge snapshot to a file, for any static host.

The same snapshot ``GET /edge/snapshot`` serves (``mabware.edge_snapshot``),
made without a server: the experiments come from the registry beside the
store (``PATH.experiments.json`` of ``file:PATH``, the ``experiments`` key
of ``redis://``: what ``mabware serve`` on that store keeps), the
statistics from the merged state, and each experiment's allocation is
``Experiment.decide`` of them: policy, then guardrails, as the server
computes it. The command only reads the store: it pushes nothing, takes no
lock and writes nothing there.

The file is replaced atomically (temp file, fsync, rename, directory
fsync): a static host serving it never sends half of one. Its sequence is
``edge_snapshot.next_seq`` of the one in the file it replaces, so it rises
with every issue, across runs too. One issuer per file: two at once may
issue the same sequence.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mabware.cli._serve import signing_key

if TYPE_CHECKING:  # for mypy only: numpy, cryptography and starlette load when the command runs
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from mabware.edge_snapshot import EdgeExperiment
    from mabware.server._registry import Entries
    from mabware.store.merge import SharedState

#: what one issue reads: the registry's experiments and the merged state
Source = Callable[[], "tuple[Entries, SharedState]"]


@click.command()
@click.option(
    "--store",
    "store_url",
    required=True,
    metavar="URL",
    help="The server's store, read only: file:PATH or redis://HOST.",
)
@click.option(
    "--signing-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="The signing key: a file holding `mabware keygen --signing`'s JSON or its "
    "private_key. Or MABWARE_SIGNING_KEY, holding that text itself.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    metavar="FILE",
    help="The file to write (replaced atomically).",
)
@click.option(
    "--every",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Issue again every SECONDS until SIGINT or SIGTERM. Default: once.",
)
def snapshot(store_url: str, signing_key_file: Path | None, out: Path, every: float | None) -> None:
    """Write the signed edge snapshot of a store's experiments to a file (needs mabware[server]).

    Prints one line per issue: its sequence, how many experiments, the file.
    """
    text = signing_key(signing_key_file)
    if text is None:
        raise click.UsageError(
            "mabware snapshot signs what it writes: give --signing-key-file PATH "
            "(or MABWARE_SIGNING_KEY); `mabware keygen --signing` makes a key"
        )
    if not out.parent.is_dir():
        raise click.BadParameter(f"no directory {out.parent}", param_hint="'--out'")
    from mabware.edge_snapshot import private_key

    key = private_key(text)
    with _source(store_url) as source, _until_stopped(every is not None) as stopped:
        while True:
            try:
                seq, count = issue_file(source, key, out, time.time())
            except Exception as exc:
                failure = f"could not issue from {store_url}: {type(exc).__name__}: {exc}"
                if every is None:
                    raise click.ClickException(failure) from None
                click.echo(failure, err=True)  # a loop lives through an outage
            else:
                click.echo(f"seq {seq}: {count} experiments -> {out}")
            if every is None or stopped.wait(every):
                return


def issue_file(source: Source, key: Ed25519PrivateKey, out: Path, now: float) -> tuple[int, int]:
    """Issue one snapshot into ``out``; its sequence and how many experiments it has."""
    from mabware.edge_snapshot import EdgeSnapshot, SnapshotError, issue, next_seq, read
    from mabware.store._durable import write_atomically

    entries, state = source()
    previous = None
    with contextlib.suppress(OSError, SnapshotError):
        previous = read(out.read_bytes(), None).seq
    experiments = experiments_of(entries, state, now)
    signed = issue(EdgeSnapshot(next_seq(previous, now), now, experiments), key)
    write_atomically(out, signed, out.with_name(f".{out.name}.tmp-{os.getpid()}"))
    return read(signed, None).seq, len(experiments)


def experiments_of(entries: Entries, state: SharedState, now: float) -> tuple[EdgeExperiment, ...]:
    """Each experiment with its allocation after guardrails, from the merged statistics."""
    import numpy as np

    from mabware.edge_snapshot import EdgeExperiment
    from mabware.store.merge import Tally, add, combined_many

    wanted = [
        ((name, e.experiment.version), e.experiment.arm_names, e.experiment.policy.buckets_needed)
        for name, e in entries.items()
    ]
    rng = np.random.default_rng()
    out = []
    for entry, stats in zip(entries.values(), combined_many(state, wanted), strict=True):
        exp = entry.experiment
        if exp.policy.buckets_needed:  # the drift policies' buckets, advanced to now
            empty = exp.counters().snapshot(exp.bucket_at(now))
            stats = add(Tally(exp.arm_names, stats), Tally(exp.arm_names, empty)).stats
        allocation = exp.decide(stats, rng, disabled_arms=entry.disabled_arms)
        out.append(EdgeExperiment.of(exp, allocation))
    return tuple(out)


@contextlib.contextmanager
def _source(store_url: str) -> Iterator[Source]:
    """What the store holds, read without writing: file:PATH or redis://HOST."""
    try:
        from mabware.server._registry import FileRegistry, open_registry
    except ImportError:
        raise click.ClickException(
            "mabware snapshot reads the server's registry: pip install 'mabware[server]'"
        ) from None
    from mabware.exceptions import ConfigError
    from mabware.store.merge import SharedState, unpack

    scheme, _, rest = store_url.partition(":")
    if scheme.lower() == "file" and rest:
        state = Path(rest).expanduser()
        if not state.parent.is_dir():  # a FileRegistry would create it
            raise click.BadParameter(f"no directory {state.parent}", param_hint="'--store'")
        registry = FileRegistry(state)
        if not registry.path.exists():
            raise click.BadParameter(
                f"no experiments at {registry.path}: is this a mabware serve store?",
                param_hint="'--store'",
            )

        def read_file() -> tuple[Entries, SharedState]:
            # the state is replaced by a rename: a read sees a whole one, no lock needed
            data = state.read_bytes() if state.exists() else None
            return registry.load()[1], unpack(data) if data is not None else SharedState()

        yield read_file
        return
    if scheme.lower() not in ("redis", "rediss"):
        raise click.BadParameter(
            f"the experiments live beside a file:PATH or redis://HOST store, got {store_url!r}",
            param_hint="'--store'",
        )
    try:
        from mabware.store.redis import RedisBackend

        backend: Any = RedisBackend(store_url)
    except (ImportError, ConfigError) as exc:
        raise click.BadParameter(str(exc), param_hint="'--store'") from None
    redis_registry = open_registry(store_url, backend)
    try:
        yield lambda: (redis_registry.load()[1], backend.read())
    finally:
        backend.close()


@contextlib.contextmanager
def _until_stopped(looping: bool) -> Iterator[threading.Event]:
    """An event that SIGINT and SIGTERM set while looping (then: exit 0, the file whole)."""
    stopped = threading.Event()
    if not looping:
        yield stopped
        return
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in handlers:
        signal.signal(sig, lambda signum, frame: stopped.set())
    try:
        yield stopped
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
