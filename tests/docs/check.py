"""The docs check: every command line in README.md and docs/*.md parses with its command's own parser, and
every relative link and image resolves (file, and heading anchor when one is given).

Parsing only (``build_parser().parse_args``): nothing trains, nothing reads data. A value written as a
placeholder (``DIR``, ``FILE.json``, ``N``, ``TEAM,...``, ``<study>``, ``postgresql+psycopg://...``) is replaced by
a value the option accepts, so the flags around it are still checked; every flag must be spelt in full (argparse
would accept an abbreviation, a reader should not have to guess).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

COMMAND = re.compile(r"(?:^|[\s;&|(`])(?:\S*/)?python3?\s+((?:runners|analysis|benchmarks)/\w+\.py)\b([^`]*)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")  # an inline code span, line breaks allowed (a paragraph's)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:a|img)\s[^>]*(?:href|src)=\"([^\"]+)\"")
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*(?:[.,|/:=+-][\w.,|/:+-]*)?|.*(?:\.\.\.|<[^>]*>).*")
SHELL_STOP = {"&&", "||", "|", ";", "&", ">", ">>", "2>", "2>&1", "<", ")"}


@dataclass(frozen=True)
class Problem:
    where: str  # file:line
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def doc_files(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def command_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every line of a fenced block (continuations joined) and every inline code span
    (it may wrap onto the next line of its paragraph) that holds a ``python runners|analysis|benchmarks/...``
    command."""
    found, in_fence, pending, start = [], False, "", 0
    paragraph: list[tuple[int, str]] = []

    def inline() -> None:
        if paragraph:
            first, joined = paragraph[0][0], "\n".join(line for _, line in paragraph)
            for match in SPAN.finditer(joined):
                span = match.group(1).replace("\n", " ")
                if COMMAND.search(span):
                    found.append((first + joined.count("\n", 0, match.start()), span))
            paragraph.clear()

    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            inline()
            in_fence, pending = not in_fence, ""
            continue
        if in_fence:
            if not pending:
                start = number
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            line, pending = pending + line, ""
            if COMMAND.search(line):
                found.append((start, line))
        elif line.strip():
            paragraph.append((number, line))
        else:
            inline()
    inline()
    return sorted(found)


def split_command(line: str) -> list[tuple[str, list[str]]]:
    """(script, its arguments) for each command in a shell line, arguments cut at a shell operator, a
    redirection or a comment."""
    commands = []
    for match in COMMAND.finditer(line):
        lexer = shlex.shlex(match.group(2), posix=True, punctuation_chars=";&|<>()")
        lexer.whitespace_split = True
        args = []
        try:
            for token in lexer:
                if token in SHELL_STOP or token.startswith(("#", ">", "2>")):
                    break
                args.append(token)
        except ValueError:  # an unclosed quote: the command is checked as far as it goes
            pass
        commands.append((match.group(1), args))
    return commands


def build_parser(script: str) -> argparse.ArgumentParser:
    module = importlib.import_module(script[:-len(".py")].replace("/", "."))
    return module.build_parser()


def _stand_in(action: argparse.Action | None) -> str:
    """A value ``action`` accepts, for a placeholder."""
    if action is None:
        return "x"
    candidates = [*(action.choices or ())][:1] or ["1", "0.5", "x", "a=b"]
    for value in candidates:
        try:
            if action.type:
                action.type(value)
            return value
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
    return candidates[0]


def check_command(parser: argparse.ArgumentParser, args: list[str]) -> str | None:
    """None when ``args`` parse, else what is wrong."""
    options = parser._option_string_actions
    concrete, action = [], None  # action: the option whose value comes next, if any
    for token in args:
        if token == "...":
            continue
        if token.startswith("--"):
            flag, equals, value = token.partition("=")
            if flag not in options:
                return f"{flag}: no such option"
            action = options[flag] if options[flag].nargs != 0 and not equals else None
            if equals and PLACEHOLDER.fullmatch(value):
                token = f"{flag}={_stand_in(options[flag])}"
            concrete.append(token)
            continue
        concrete.append(_stand_in(action) if PLACEHOLDER.fullmatch(token) else token)
        if action is not None and action.nargs not in ("*", "+"):
            action = None
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(concrete)
    except SystemExit as stop:
        if stop.code:
            return stderr.getvalue().strip() or f"exit {stop.code}"
    return None


def check_commands(path: Path, root: Path) -> list[Problem]:
    problems = []
    for number, line in command_lines(path.read_text()):
        for script, args in split_command(line):
            where = f"{path.relative_to(root)}:{number}"
            if not (root / script).is_file():
                problems.append(Problem(where, f"{script}: no such command"))
                continue
            error = check_command(build_parser(script), args)
            if error:
                problems.append(Problem(where, f"python {script} {shlex.join(args)}: {error}"))
    return problems


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result, in_fence = set(), False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


def check_links(path: Path, root: Path) -> list[Problem]:
    problems, in_fence = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
        if in_fence:
            continue
        line = INLINE.sub("", line)
        for target in LINK.findall(line) + HTML_LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            where = f"{path.relative_to(root)}:{number}"
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                problems.append(Problem(where, f"{target}: no such file"))
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(Problem(where, f"{target}: no heading #{anchor} in {linked.name}"))
    return problems


def check(root: Path) -> list[Problem]:
    problems = []
    for path in doc_files(root):
        if path.exists():
            problems += check_commands(path, root) + check_links(path, root)
    return problems
