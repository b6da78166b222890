"""What the command line does when stdout fails under it: a reader that left (`... | head -1`) or a full disk.

Either way the work is done (images saved, state read); what failed is the telling. A reader that left chose
to: the command ends quietly with the shell's code for it. Anything else is said on stderr, with the paths of
the images that were saved, since stdout could not carry them."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator, Sequence

EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a program whose reader went away
EXIT_FAILED = 2


class StdoutLost(Exception):
    def __init__(self, error: OSError, saved: Sequence[str] = ()) -> None:
        super().__init__(str(error))
        self.error = error
        self.saved = tuple(saved)


@contextlib.contextmanager
def writing_stdout(saved: Sequence[str] = ()) -> Iterator[None]:
    """Around what a command prints on stdout; `saved`: the images to name on stderr if that fails."""
    try:
        yield
        if sys.stdout is None:  # started with fd 1 closed (`>&-`): print() wrote nothing, silently
            raise OSError(errno.EBADF, "stdout is closed")
        sys.stdout.flush()  # piped, stdout is buffered: a failure shows only here
    except OSError as e:
        raise StdoutLost(e, saved) from None


def stdout_lost(lost: StdoutLost) -> int:
    """Say so (unless the reader just left) and return the exit code."""
    if sys.stdout is not None:
        with contextlib.suppress(OSError):  # the interpreter flushes stdout once more on the way out: let it land
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if isinstance(lost.error, BrokenPipeError):
        return EXIT_PIPE_CLOSED
    kept = f" The image(s) are saved: {', '.join(lost.saved)}." if lost.saved else ""
    print(f"gpt-image-2-mcp: cannot write to stdout ({lost.error.strerror or lost.error}).{kept}", file=sys.stderr)
    return EXIT_FAILED
