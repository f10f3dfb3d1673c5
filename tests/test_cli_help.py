"""Every `kakanai` subcommand and option explains itself: the parser is walked and a missing help fails."""

from __future__ import annotations

import argparse

import pytest

from app.cli import build_parser, main


def _walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        if isinstance(action, argparse._SubParsersAction):
            if not action.help:
                missing.append(f"{path}: the list of subcommands")
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for sub_name, sub in action.choices.items():
                if not helps.get(sub_name):
                    missing.append(f"{path} {sub_name}")
                missing += _walk(sub, f"{path} {sub_name}")
        elif not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{path} {name}")
    return missing


def test_every_subcommand_and_option_has_help() -> None:
    parser = build_parser()
    assert _walk(parser, "kakanai") == []
    # The walk does reach the leaves (a typo in the walker would make the test pass vacuously).
    counted = []

    def count(p: argparse.ArgumentParser) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    count(sub)
            elif not isinstance(action, argparse._HelpAction):
                counted.append(action)

    count(parser)
    assert len(counted) > 30


def test_the_walker_finds_a_missing_help() -> None:
    parser = argparse.ArgumentParser(prog="x")
    sub = parser.add_subparsers(dest="cmd", help="commands")
    thing = sub.add_parser("thing", help="does a thing")
    thing.add_argument("--quiet", action="store_true")
    sub.add_parser("bare")
    assert _walk(parser, "x") == ["x thing --quiet", "x bare"]


@pytest.mark.parametrize("argv", [["--help"], ["users", "--help"], ["users", "reset-password", "--help"],
                                  ["departments", "token", "rotate", "--help"], ["keys", "rotate", "--help"]])
def test_help_pages_print(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: kakanai" in capsys.readouterr().out
