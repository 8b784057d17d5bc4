"""The argument parser every command builds from its module docstring (first paragraph: what it does;
the rest, with its exact command lines, under --help)."""
from __future__ import annotations

import argparse


def doc_parser(doc: str) -> argparse.ArgumentParser:
    head, _, rest = doc.partition("\n\n")
    return argparse.ArgumentParser(description=head, epilog=rest,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
