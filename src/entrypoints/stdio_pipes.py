"""Wider pipes for the stdio transport, where the kernel allows it (Linux).

A tool result with an inline preview is up to ~750 KB of JSON on one line. Through a pipe's default 64 KB buffer it
crosses in a dozen rounds, each waking the SDK's writer thread and the client's reader in turn; with a 1 MiB
buffer it is written in one go (a 1024x1024 call: ~5 ms less, `docs/benchmarks.md`). Large requests (images sent
inline as data URLs) come the other way, so both pipes are widened. The pipes are the client's: they are only
made bigger, never replaced, and anything the kernel refuses leaves them as they were.
"""

from __future__ import annotations

import contextlib
import os
import stat

PIPE_BYTES = 1 << 20
"""1 MiB: the largest size an unprivileged process may ask for by default (/proc/sys/fs/pipe-max-size)."""


def widen_pipes(fds: tuple[int, ...] = (0, 1)) -> None:
    """Ask for PIPE_BYTES of buffer on each of `fds` that is a pipe; a no-op elsewhere."""
    try:
        import fcntl

        set_size = fcntl.F_SETPIPE_SZ  # Linux only
    except (ImportError, AttributeError):
        return
    for fd in fds:
        with contextlib.suppress(OSError):  # not open, over the system's limit, or the user's pipe quota spent
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                fcntl.fcntl(fd, set_size, PIPE_BYTES)
