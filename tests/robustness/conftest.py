"""Running a command as a user does, in process, and a fingerprint of a folder; the small world of real artefacts
the cases work on (``base_world``, ``world``) is in tests/conftest.py, shared with tests/faults."""
from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path

from cli.exits import run

COMMANDS = {"search": "runners.search", "export": "runners.export", "retrain": "runners.retrain",
            "predict": "runners.predict", "adapt": "runners.adapt", "inspect_data": "runners.inspect_data",
            "report": "analysis.report", "inference": "benchmarks.inference"}


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def message(self) -> str:
        """The last line the command printed to stderr: what the user reads."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def invoke(command: str, argv: list[str], capsys) -> Outcome:
    """Run a command as ``python COMMAND.py ARGS`` would: through ``cli.exits.run``; a SystemExit with a
    message prints it and exits 1, as the interpreter does. Any other exception propagates: a traceback."""
    module = importlib.import_module(COMMANDS[command])
    capsys.readouterr()
    try:
        code = run(lambda: module.main(argv), command)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=__import__("sys").stderr)
            code = 1
        else:
            code = stop.code or 0
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root``: its relative path and a hash of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}
