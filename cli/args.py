"""The argument parser every command builds from its docstring, and the argparse types of what a user types."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable

class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (no usage block): the value, what is wrong, where help is."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def doc_parser(doc: str) -> argparse.ArgumentParser:
    """The parser a command builds from its module docstring (first paragraph: what it does; the rest, with
    its exact command lines, under --help)."""
    head, _, rest = doc.partition("\n\n")
    return OneLineParser(description=head, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter)



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



class _Teams(argparse.Action):
    """Joins ``--val-teams tuwr amz`` and ``--val-teams tuwr,amz`` (and a mix) into one list of team names."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [team.strip() for value in values for team in value.split(",") if team.strip()])


def add_val_teams_argument(parser, help: str, optional_value: bool = False) -> None:
    """``--val-teams``, read the same way by every command: teams space- or comma-separated (``--val-teams tuwr,amz``
    and ``--val-teams tuwr amz`` are one list, ``["tuwr", "amz"]``); None when the flag is not given. With
    ``optional_value`` the flag may stand alone (``[]``: a frame split instead of the command's default)."""
    parser.add_argument("--val-teams", nargs="*" if optional_value else "+", action=_Teams, default=None,
                        metavar="TEAM", help=help)
