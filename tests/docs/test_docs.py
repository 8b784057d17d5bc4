"""README.md and docs/ say only what the commands accept, and link only to what exists."""
from __future__ import annotations

from pathlib import Path

from tests.docs.check import check, check_command, build_parser, command_lines, split_command

ROOT = Path(__file__).resolve().parents[2]


def test_every_command_line_parses_and_every_link_resolves():
    problems = check(ROOT)
    assert not problems, "\n".join(map(str, problems))


def test_the_check_finds_command_lines_in_blocks_inline_and_after_a_venv():
    text = ("Run `python runners/export.py --out best.json` then\n\n```bash\n"
            "python3 -m venv .venv && .venv/bin/python runners/search.py --trials 200 \\\n"
            "    --data DIR   # a comment\n```\n")
    found = [command for _, line in command_lines(text) for command in split_command(line)]
    assert found == [("runners/export.py", ["--out", "best.json"]),
                     ("runners/search.py", ["--trials", "200", "--data", "DIR"])]


def test_an_inline_command_that_wraps_onto_the_next_line_is_found():
    text = "Replayed (`python benchmarks/pruning_replay.py --storage\nsqlite:///runs/rank.db --study rank-tuwr`).\n"
    assert command_lines(text) == [(1, "python benchmarks/pruning_replay.py --storage sqlite:///runs/rank.db "
                                       "--study rank-tuwr")]


def test_placeholders_stand_for_values_the_option_accepts():
    parser = build_parser("runners/search.py")
    assert check_command(parser, ["--trials", "N", "--data", "DIR", "--val-teams", "TEAM,..."]) is None
    assert check_command(build_parser("runners/predict.py"), ["--model", "M.onnx", "DIR", "--out", "OUT"]) is None


def _docs(tmp_path: Path, readme: str) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A page\n\n## Its section\n")
    (tmp_path / "runners").mkdir()
    (tmp_path / "runners" / "search.py").write_text("")  # the check reads the real parser; the file must exist
    (tmp_path / "README.md").write_text(readme)
    return tmp_path


def test_the_check_fails_on_a_misspelt_flag(tmp_path):
    root = _docs(tmp_path, "```\npython runners/search.py --trails 200\n```\n")
    problems = check(root)
    assert [p.where for p in problems] == ["README.md:2"]
    assert "--trails: no such option" in problems[0].what


def test_the_check_fails_on_a_value_the_option_refuses(tmp_path):
    root = _docs(tmp_path, "Run `python runners/search.py --max-kb -3`.\n")
    assert "--max-kb" in str(check(root)[0])


def test_the_check_fails_on_a_dead_link_and_a_missing_heading(tmp_path):
    root = _docs(tmp_path, "See [the page](docs/page.md#its-section), [gone](docs/gone.md), "
                           "[no such heading](docs/page.md#elsewhere) and ![a figure](docs/figures/x.png).\n")
    problems = [p.what for p in check(root)]
    assert problems == ["docs/gone.md: no such file", "docs/page.md#elsewhere: no heading #elsewhere in page.md",
                        "docs/figures/x.png: no such file"]


def test_a_command_the_repository_does_not_have_is_named(tmp_path):
    root = _docs(tmp_path, "`python runners/serch.py --trials 2`\n")
    assert [p.what for p in check(root)] == ["runners/serch.py: no such command"]
