"""Tests for the command line (grouprec.__main__): where it lives and what it offers.

Each command is run end to end by the tests of the module it calls (``info``: test_data.py,
test_data_errors.py; ``case-study``: test_case_study.py; ``fetch``: test_fetch.py;
``synthetic``: test_synthetic.py; ``synthetic-large`` and ``ddp``: test_distributed.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import grouprec
from grouprec.__main__ import build_parser, main

PACKAGE = Path(grouprec.__file__).resolve().parent
COMMANDS = ("info", "case-study", "fetch", "synthetic", "synthetic-large", "ddp")


def _imports_argparse(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "argparse":
            return True
    return False


def test_only_the_command_line_parses_arguments():
    """Library modules take keyword arguments; argument parsing lives in __main__.py alone."""
    parsers = sorted(
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if _imports_argparse(path)
    )
    assert parsers == ["__main__.py"]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("    ")}
    assert set(COMMANDS) <= listed


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_handler_and_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m grouprec {command} [-h]")
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert callable(sub.choices[command].get_default("handler"))


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err
