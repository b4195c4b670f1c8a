"""Every `lineagehouse ...` command in docs/emitters/*.md exists, with the options shown.

Commands are collected from fenced code blocks (a line, with its `\\` continuations, that
starts with `lineagehouse` or `.venv/bin/lineagehouse`; `&&`, `;` and `|` split a line)
and from inline code spans. Each one is checked twice, in process (no ClickHouse or
broker is needed, so this is not a slow test):

1. run with `--help` appended: exit code 0 and the command's usage. This proves the
   command path exists and every option name shown is known (the parser reads the whole
   line before it honours `--help`, so an unknown option is still an error);
2. parsed without running (the CLI's `make_context`, which converts every value and
   checks required options, but calls nothing): a `--role owner` or a missing `--name`
   fails here, which `--help` alone would not notice.

No command is skipped. A mention of `lineagehouse <command>` outside code would escape
both checks, so every such mention must be one of the commands found.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.exceptions import TyperException
from typer.testing import CliRunner

from lineagehouse.cli import app
from tests.conftest import REPO

DOCS = REPO / "docs" / "emitters"
GUIDES = sorted(DOCS.glob("*.md"))
PROGRAMS = ("lineagehouse", ".venv/bin/lineagehouse")
SHELL_SEPARATORS = {"&&", "||", ";", "|"}
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"(?<!`)`((?:\.venv/bin/)?lineagehouse [^`\n]+)`(?!`)")


def top_level_commands() -> set[str]:
    command = typer.main.get_command(app)
    return set(command.commands)  # type: ignore[attr-defined]


def commands_in(text: str) -> list[list[str]]:
    """Every lineagehouse command line shown in a guide, as argv without the program."""
    found: list[list[str]] = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            found.extend(_split(line.strip().removeprefix("$ ")))
    prose = FENCE.sub("", text)
    for span in INLINE.findall(prose):
        found.extend(_split(span))
    return found


def _split(line: str) -> list[list[str]]:
    if not line.startswith(PROGRAMS):
        return []
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = []
    current: list[str] = []
    for word in [*lexer, ";"]:
        if word in SHELL_SEPARATORS:
            if current and current[0] in PROGRAMS:
                commands.append(current[1:])
            current = []
        else:
            current.append(word)
    return commands


def mentions_in(text: str, names: set[str]) -> int:
    """How many times `lineagehouse <a real command>` appears anywhere in the text."""
    pattern = r"(?<![\w.-])lineagehouse[ \t]+(" + "|".join(sorted(names)) + r")\b"
    return len(re.findall(pattern, text))


def dry_parse(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse `argv` like the CLI would, down to the leaf command, without running it."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("lineagehouse", list(argv))
    while hasattr(command, "resolve_command"):  # a group: descend to the subcommand
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, command, rest = command.resolve_command(ctx, rest)
        if hasattr(command, "resolve_command") and not rest:
            # A group named alone (`lineagehouse keys`): a mention, not a command to run;
            # its --help run covers it.
            return command.name, {}
        ctx = command.make_context(name, rest, parent=ctx)
    return command.name, ctx.params


ALL = [(guide.name, argv) for guide in GUIDES for argv in commands_in(guide.read_text())]


def test_the_guides_show_lineagehouse_commands() -> None:
    names = {guide.name for guide in GUIDES}
    assert {"dbt.md", "namespaces-and-keys.md", "spark.md", "README.md"} <= names, names
    shown = {name for name, _ in ALL}
    assert {"dbt.md", "namespaces-and-keys.md", "spark.md", "openlineage-python.md"} <= shown


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_every_mention_is_a_checked_command(guide: Path) -> None:
    text = guide.read_text()
    names = top_level_commands()
    assert mentions_in(text, names) == len(commands_in(text)), (
        f"{guide.name}: a `lineagehouse <command>` mention outside a code span or block "
        "would not be checked; put it in backticks"
    )


@pytest.mark.parametrize(("guide", "argv"), ALL, ids=[f"{g}:{' '.join(a)}" for g, a in ALL])
def test_command_exists_with_its_options(guide: str, argv: list[str]) -> None:
    result = CliRunner().invoke(app, [*argv, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, f"{guide}: lineagehouse {' '.join(argv)} --help\n{result.output}"
    assert "Usage:" in result.output
    try:
        leaf, params = dry_parse(argv)
    except TyperException as exc:
        pytest.fail(f"{guide}: lineagehouse {shlex.join(argv)}: {exc.format_message()}")
    assert argv[:1] and leaf, argv
    assert isinstance(params, dict)


def test_the_installed_program_answers_help() -> None:
    """The guides call the console script `lineagehouse`, not `python -m`: it exists."""
    program = Path(sys.executable).parent / "lineagehouse"
    done = subprocess.run([str(program), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert all(name in done.stdout for name in ("keys", "api", "worker", "up"))
