"""How a command ends: a ``UserError`` is one line and exit 2, Ctrl-C one line and exit 130 (also while the
command is still importing torch, Optuna, Ray)."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Callable

EXIT_INTERRUPTED = 130


class UserError(SystemExit):
    """A mistake in what the user gave (a value, a file); the message names it and says what to do.

    A ``SystemExit``, so that code calling a runner's ``main`` directly (tests, notebooks) stops the same way."""

    def __init__(self, message: str):
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.code)



def stop_on_ctrl_c(name: str) -> None:
    """Ctrl-C before ``run`` starts the command (while Python imports torch, Optuna, Ray: seconds) is one line and
    exit 130, not a traceback from deep inside an import. Called first by each command's script, above its other
    imports; nothing has been read or written yet, so the process may end at once."""
    global _starting
    _starting = name
    signal.signal(signal.SIGINT, _stop_while_starting)
    if os.environ.get(STARTED_FILE_ENV):  # tests: say when Ctrl-C is covered, so they send it during the imports
        Path(os.environ[STARTED_FILE_ENV]).touch()


_starting = "command"
STARTED_FILE_ENV = "KEYPOINT_NAS_STARTED_FILE"


def _stop_while_starting(signum, frame):
    os.write(2, f"\n{_starting}: interrupted while starting; nothing was written\n".encode())
    os._exit(EXIT_INTERRUPTED)


def run(main: Callable[[], int], name: str) -> int:
    """Run a command's ``main``: a ``UserError`` is one line and exit 2, Ctrl-C is one line and exit 130."""
    if signal.getsignal(signal.SIGINT) is _stop_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # from here Ctrl-C is KeyboardInterrupt again
    try:
        return main()
    except UserError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{name}: interrupted; nothing half-written was kept", file=sys.stderr)
        return EXIT_INTERRUPTED
