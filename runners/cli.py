"""What every command shares at its edge: the argument parser, the checks on what a user types and on the
paths it names, and the way a mistake reaches the user (one line, no traceback).

Every runner checks its inputs here, before it loads data or trains:

- values: ``positive_int``, ``positive_float``, ``non_negative_float`` (finite, in range) as argparse types;
- input paths: ``input_path`` (exists, right kind);
- output paths: ``check_out_dir`` and ``check_out_file``, before any work: a database is never an output, an
  existing output is refused unless ``--force``, and an output is never one of the command's inputs;
- mistakes: ``UserError`` (raised anywhere below a runner) and ``run(main)`` turn them, and Ctrl-C, into one
  line on stderr and an exit code.

Config files are checked by ``search_space.config.Config.from_dict``, models by ``deploy.exported``.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Iterable

SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_STORAGE = "sqlite:///optuna.db"  # where search writes its study and export, report read it
EXIT_INTERRUPTED = 130


class UserError(SystemExit):
    """A mistake in what the user gave (a value, a file); the message names it and says what to do.

    A ``SystemExit``, so that code calling a runner's ``main`` directly (tests, notebooks) stops the same way."""

    def __init__(self, message: str):
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.code)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (no usage block): the value, what is wrong, where help is."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def doc_parser(doc: str) -> argparse.ArgumentParser:
    """The parser a command builds from its module docstring (first paragraph: what it does; the rest, with
    its exact command lines, under --help)."""
    head, _, rest = doc.partition("\n\n")
    return OneLineParser(description=head, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter)


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


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def at_least(kind: type, low: float, strict: bool) -> Callable[[str], float]:
    """An argparse type: a finite ``kind`` above ``low`` (``strict``) or at least ``low``."""
    noun = "an integer" if kind is int else "a number"
    rule = f"{noun} {'>' if strict else '>='} {low:g}"

    def parse(text: str):
        value = _number(text, kind)
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    parse.__name__ = f"{kind.__name__} {rule}"  # argparse names the type in its own messages
    return parse


positive_int = at_least(int, 1, strict=False)
non_negative_int = at_least(int, 0, strict=False)
positive_float = at_least(float, 0, strict=True)
non_negative_float = at_least(float, 0, strict=False)


def fraction(text: str) -> float:
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def add_data_argument(parser: argparse.ArgumentParser, help: str, required: bool = False) -> None:
    """``--data``, which every command that reads crops takes the same way: a Supervisely export folder or a COCO
    keypoints .json, given again for more sources (``cones.load.load_data`` joins them, teams keeping their
    names). The value is None (not given) or a list of paths."""
    parser.add_argument("--data", action="append", type=Path, required=required, metavar="DIR|FILE.json",
                        help=help + "; again for more sources")


def is_database(path: Path) -> bool:
    """A SQLite file (an Optuna study's storage) by its header, whatever it is named."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def sqlite_path(storage: str) -> Path | None:
    """The file of a ``sqlite:///`` storage URL, None for other storages."""
    return Path(storage[len("sqlite:///"):]) if storage.startswith("sqlite:///") else None


def check_storage(storage: str, must_exist: bool) -> None:
    """A SQLite storage must be a database (or, for a search, not exist yet): Optuna would otherwise fail
    deep inside sqlalchemy, or create an empty database where a reader expected a study."""
    path = sqlite_path(storage)
    if path is None:
        return
    if not path.exists():
        if must_exist:
            raise UserError(f"--storage {storage}: no such file {path}; point --storage at the search's database "
                            f"({DEFAULT_STORAGE} by default)")
        if not path.parent.is_dir():
            raise UserError(f"--storage {storage}: no folder {path.parent} to create the database in")
        return
    # An empty file is a database another search is creating this instant (SQLite opens it as a new one).
    if path.stat().st_size and not is_database(path):
        raise UserError(f"--storage {storage}: {path} is not a SQLite database; point --storage at the search's "
                        f"database ({DEFAULT_STORAGE} by default) or at a new file")
    if not must_exist and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        # A search writes trials (and SQLite a journal beside the file); reading commands need neither.
        raise UserError(f"--storage {storage}: {path} (or its folder) is read-only; a search writes to it. Make it "
                        "writable, or copy it somewhere writable and point --storage at the copy")


def input_path(path: str | Path, option: str, kind: str = "any") -> Path:
    """An input that must exist: ``kind`` "file", "dir" or "any"."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{option} {path}: no such file or folder")
    if kind == "file" and not path.is_file():
        raise UserError(f"{option} {path} is a folder; give a file")
    if kind == "dir" and not path.is_dir():
        raise UserError(f"{option} {path} is a file; give a folder")
    return path


def _protected(out: Path, option: str, inputs: Iterable[Path]) -> None:
    if out.is_file() and is_database(out):
        raise UserError(f"{option} {out} is a database (an Optuna study?); it is never written over, "
                        "pick another path")
    resolved = out.resolve()
    for item in inputs:
        item = Path(item).resolve()
        if resolved == item or (item.is_dir() and item in resolved.parents):
            raise UserError(f"{option} {out} is or lies inside the input {item}; pick a path of its own")


def check_out_dir(out: str | Path, option: str = "--out", force: bool = False, inputs: Iterable[Path] = ()) -> Path:
    """An output folder, checked before any work: not a file, not an input, new or empty unless ``force``."""
    out = Path(out)
    _protected(out, option, inputs)
    if out.exists() and not out.is_dir():
        raise UserError(f"{option} {out} is a file; give a folder (a new one)")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"{option} {out} already exists and is not empty; pick a new folder, or add --force to "
                        "write over the files this command writes there")
    return out


def check_out_file(out: str | Path, option: str = "--out", force: bool = False, inputs: Iterable[Path] = ()) -> Path:
    """An output file, checked before any work: not a folder, not a database, not an input, new unless ``force``."""
    out = Path(out)
    _protected(out, option, inputs)
    if out.is_dir():
        raise UserError(f"{option} {out} is a folder; give a file name (e.g. {out / 'best.json'})")
    if out.exists() and not force:
        raise UserError(f"{option} {out} already exists; pick a new name, or add --force to write over it")
    return out
