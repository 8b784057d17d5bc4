"""cli/args.py: one ``--val-teams`` for every command that takes it."""
import importlib

import pytest

COMMANDS = ("runners.search", "runners.retrain", "runners.ablate")
REQUIRED = {"runners.search": [], "runners.retrain": ["--config", "x.json", "--out", "o"],
            "runners.ablate": ["--study", "s"]}


@pytest.mark.parametrize("command", COMMANDS)
def test_val_teams_comma_and_space_separated_are_one_list(command):
    parser = importlib.import_module(command).build_parser()

    def teams(*values):
        return parser.parse_args([*REQUIRED[command], "--val-teams", *values]).val_teams

    assert teams("tuwr,amz") == teams("tuwr", "amz") == teams("tuwr,", "amz") == teams("tuwr, amz") == ["tuwr", "amz"]
    assert parser.parse_args(REQUIRED[command]).val_teams is None


@pytest.mark.parametrize("command", ["runners.retrain", "runners.ablate"])
def test_val_teams_alone_asks_for_a_frame_split_where_a_command_allows_it(command):
    parser = importlib.import_module(command).build_parser()
    assert parser.parse_args([*REQUIRED[command], "--val-teams"]).val_teams == []
