"""File-system and process helpers every package shares (the catalog is the package all import).

- :func:`exclusive`: an advisory lock between threads and processes, for work on files under
  the data home that must happen once (an export, a display raster, an upload's ingest).
- :func:`process_alive`: whether a process still runs, to tell an abandoned lock, job or
  metrics folder from a live one.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock`` (created if missing; flock on its own fd).

    Args:
        lock: the lock file; it is left in place, so a lock is never split between two files.
    """
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
