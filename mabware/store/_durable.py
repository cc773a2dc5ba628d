"""Files that many processes change: an exclusive ``flock``, and atomic, durable writes.

Used by the ``file:`` store for its state and by the server for the files
it keeps beside it (the experiment registry, the edge snapshot). A file's
*revision* is its (inode, size, mtime): every atomic write makes a new
inode, so a reader that sees the same revision holds the same content.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing).

    A sidecar lock file, not the data file: the data file is replaced by
    every rename, so a lock on it would guard an inode that no longer has
    the name. A process killed while holding the lock loses it with its
    file descriptors, so it blocks no one.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            # Unlock before closing: a child forked meanwhile shares this
            # open file description, and closing only our descriptor
            # would leave the lock held for as long as the child lives.
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def write_atomically(
    path: Path,
    data: bytes,
    temp: Path,
    crash_at: Callable[[str], None] = lambda step: None,
) -> None:
    """Replace ``path`` by ``data``: readers see the whole old file or the whole new one.

    Write ``temp`` (same directory), ``fsync`` it, rename it over ``path``,
    ``fsync`` the directory (so the rename itself survives a power cut).
    ``crash_at`` is called with the name of each step done ("temp_written",
    "temp_synced", "renamed", "dir_synced"): the crash tests kill there.
    """
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:  # a short write (disk full, file size limit) must not pass as whole
            view = view[os.write(fd, view) :]
        crash_at("temp_written")
        os.fsync(fd)
        crash_at("temp_synced")
    finally:
        os.close(fd)
    os.replace(temp, path)
    crash_at("renamed")
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    crash_at("dir_synced")


def beside(state_path: str | os.PathLike[str], suffix: str) -> Path:
    """The sidecar ``STATE{suffix}`` next to a state file; its directory is created."""
    state = Path(state_path).expanduser().absolute()
    state.parent.mkdir(parents=True, exist_ok=True)
    return state.with_name(state.name + suffix)


def revision(path: Path) -> object:
    """The file's revision (one ``stat``), or None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def read_revision(path: Path) -> tuple[object, bytes | None]:
    """The file's revision and content, taken from one open file so they belong together."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
    except FileNotFoundError:
        return None, None
    return (st.st_ino, st.st_size, st.st_mtime_ns), data
