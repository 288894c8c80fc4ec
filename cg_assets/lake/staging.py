"""Staging files a live writer owns: an exclusive `flock` held from creation to publish.

A day's new version is staged in a local file before it is published. On an object store
the staging folder is this machine's temp folder, and the next holder of a day clears what
a dead writer left there. "Dead" must mean dead: a writer whose lease was taken over while
it stalled (a paused VM, a long GC) is still alive and may still be uploading its file. So
each writer holds an exclusive flock on its staging file until it has published or given
up, and a clearer deletes only files it can lock itself: the kernel drops a dead process's
locks, however it died, and keeps a stalled one's.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os


def create_owned(path: str) -> int:
    """Create `path` (it must not exist) and lock it; returns the descriptor holding the
    lock, to be closed (`release`) once the file is published or discarded."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def clear_abandoned(pattern: str) -> list[str]:
    """Delete the files matching `pattern` that no live writer holds; returns them."""
    cleared = []
    for path in glob.glob(pattern):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer's (perhaps stalled, never ours to delete)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                cleared.append(path)
        finally:
            os.close(fd)
    return cleared
