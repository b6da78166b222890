"""The console script's first step: Ctrl-C while the program is still loading ends it quietly.

Loading the command line takes a good part of a second (the SDKs, pydantic, dependency-injector). A Ctrl-C then
raises KeyboardInterrupt inside whichever module is being imported, and the program ended with its traceback
(or, in a C extension, with an unrelated error). Nothing is open yet, so until a command takes Ctrl-C over,
before it opens anything, Ctrl-C simply ends the process with the shell's code for it (SIGTERM alike).
"""

from __future__ import annotations

import os
import signal
from types import FrameType


def main() -> int:
    signal.signal(signal.SIGINT, _leave)
    signal.signal(signal.SIGTERM, _leave)
    from .cli import main as run  # after the handler, on purpose: this import is the slow part

    return run()


def _leave(signum: int, frame: FrameType | None) -> None:
    os._exit(128 + signum)  # 130 for Ctrl-C, 143 for SIGTERM
