"""Each command's --help fits one screen, and the search's says its choices as a user types them."""
from __future__ import annotations

import importlib

import pytest

COMMANDS = ["runners.search", "runners.export", "runners.retrain", "runners.adapt", "runners.predict",
            "runners.inspect_data", "runners.ablate", "analysis.report"]
SCREEN = 50  # lines of a terminal 100 columns wide


def help_text(module: str, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    return importlib.import_module(module).build_parser().format_help()


@pytest.mark.parametrize("module", COMMANDS)
def test_help_fits_one_screen(module, monkeypatch):
    lines = help_text(module, monkeypatch).splitlines()
    assert len(lines) <= SCREEN, f"{module} --help is {len(lines)} lines"


def test_the_search_s_rule_switches_are_advanced(monkeypatch):
    text = help_text("runners.search", monkeypatch)
    advanced = text[text.index("advanced: the search's rules"):]
    for switch in ("--no-reference-bar", "--rungs", "--no-fair-share", "--no-confirm", "--reference-first",
                   "--no-starting-point", "--no-baselines", "--no-early-stopping", "--sampler"):
        assert switch in advanced and switch not in text[text.index("options:"):text.index("advanced:")], switch


def test_objectives_are_shown_as_a_user_types_them(monkeypatch):
    text = help_text("runners.search", monkeypatch)
    assert "{error,error,size}" not in text
    assert "error (default) or error,size" in text
