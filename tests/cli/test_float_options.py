"""Every float option of every command and script refuses NaN and infinities as a usage error (one line, exit 2),
found by walking the parsers: an option added with plain `type=float` shows up here without being listed."""

from __future__ import annotations

import argparse

import pytest

from llama_ort.cli import build_parser
from llama_ort.cli.llama_v2 import llama_v2_parser
from llama_ort.cli.seed import seed_parser


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Every parser, by the words that reach it: `llama-ort COMMAND` and the seed's scripts."""
    found = {"llama_v2.py": llama_v2_parser(), "run_llama_v2_io_binding.py": seed_parser("", dynamic=False),
             "run_llama_v2_dynamic_io_binding.py": seed_parser("", dynamic=True)}
    main = build_parser()
    for action in main._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update({f"llama-ort {name}": parser for name, parser in action.choices.items()})
    return found


def takes_a_float(action: argparse.Action) -> bool:
    if not action.option_strings or not callable(action.type):
        return False
    try:
        return isinstance(action.type("0.5"), float)
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return False


FLOAT_OPTIONS = [(where, action.option_strings[-1]) for where, parser in parsers().items()
                 for action in parser._actions if takes_a_float(action)]


def test_the_walk_finds_the_float_options():
    assert {("llama-ort generate", "--temperature"), ("llama-ort chat", "--top-p"),
            ("llama-ort bench", "--timeout")} <= set(FLOAT_OPTIONS)


@pytest.mark.parametrize("where, option", FLOAT_OPTIONS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "-Infinity"])
def test_nan_and_infinities_are_usage_errors(capsys, where, option, value):
    with pytest.raises(SystemExit) as exit:
        parsers()[where].parse_args([f"{option}={value}"])
    err = capsys.readouterr().err
    assert exit.value.code == 2
    assert err.count("\n") == 1 and f"argument {option}: must be a finite number, got '{value}'" in err, err


@pytest.mark.parametrize("where, option, value, message", [
    ("llama-ort generate", "--temperature", "-0.5", "must be 0 or more, got -0.5"),
    ("llama-ort chat", "--top-p", "0", "must be above 0 and at most 1, got 0"),
    ("llama-ort chat", "--top-p", "1.5", "must be above 0 and at most 1, got 1.5"),
    ("llama-ort generate", "--repetition-penalty", "0", "must be more than 0, got 0"),
    ("llama-ort bench", "--timeout", "-1", "must be more than 0, got -1"),
    ("llama-ort generate", "--temperature", "warm", "'warm' is not a number"),
])
def test_values_out_of_range_are_usage_errors(capsys, where, option, value, message):
    with pytest.raises(SystemExit) as exit:
        parsers()[where].parse_args([f"{option}={value}"])
    assert exit.value.code == 2 and f"argument {option}: {message}" in capsys.readouterr().err
