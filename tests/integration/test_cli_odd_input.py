"""Every `mailsms` command, found in the command tree (a new command is covered without
editing this file), given what an administrator gets wrong: names of things that do not
exist, and for every file it takes (the settings with -c, a CSV, a template, a mail, a
password file) a path that is missing, a directory, a file that is not UTF-8 text, an
empty file. Each ends in a sentence (`mailsms: …`, or click's `Error: …` for a usage
mistake) and an exit status, never in a traceback; a file it cannot read is refused
with a status other than 0."""

from __future__ import annotations

import enum
import os
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from typer.testing import CliRunner, Result

from bridge.cli import app

# Commands that start servers and run until stopped.
LONG_RUNNING = {("serve",), ("sandbox", "serve")}
ODD_FILES = ("missing", "directory", "not_utf8", "empty")


def _leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _leaves(sub, (*path, name))
    elif path not in LONG_RUNNING:
        yield path, command


COMMANDS = dict(_leaves(typer.main.get_command(app)))


def _annotation(param: click.Parameter) -> Any:
    """The Python type Typer was given for the parameter (`Path | None` -> Path,
    `list[str]` -> str); Typer builds the click type only when the command runs."""
    kind = param.type_descriptor.annotation  # type: ignore[attr-defined]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if typing.get_origin(kind) is list:
        kind = typing.get_args(kind)[0]
    return kind


def _is_file(param: click.Parameter) -> bool:
    return _annotation(param) is Path


def _value(param: click.Parameter, given: Path) -> str:
    """A value of the parameter's type naming nothing that exists."""
    kind = _annotation(param)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return str(next(iter(kind)).value)
    if kind is Path:
        return str(given)
    return {int: "5", float: "1.5", bool: "true"}.get(kind, "nosuch")


def _args(path: tuple[str, ...], given: Path, odd: tuple[str, Path] | None = None) -> list[str]:
    """The command with every argument and required option given (files: `given`), and
    the file parameter named in `odd` given that file instead (an option: added)."""
    args = list(path)
    for p in COMMANDS[path].params:
        value = str(odd[1]) if odd is not None and p.name == odd[0] else _value(p, given)
        if p.param_type_name == "argument":
            args += [value] * max(p.nargs, 1)
        elif p.required or (odd is not None and p.name == odd[0]):
            args += [p.opts[0], value]
    return args


def _no_traceback(result: Result, args: list[str]) -> None:
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), (args, repr(exc))
    assert "Traceback" not in result.output, (args, result.output)
    if result.exit_code != 0:
        said = [line for line in result.stderr.splitlines() if line.strip()]
        assert said, (args, result.output)
        assert any(line.startswith(("mailsms: ", "Error: ")) for line in said), (args, said)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory with a migrated embedded-default database, one customer and one user."""
    where = tmp_path_factory.mktemp("cli-odd")
    old = Path.cwd()
    saved = {
        k: os.environ.pop(k) for k in ("MAILSMS_CONFIG", "MAILSMS_DATABASE_URL") if k in os.environ
    }
    os.chdir(where)
    try:
        runner = CliRunner()
        for setup in (
            ["db", "upgrade"],
            ["customer", "add", "acme"],
            ["user", "add", "anna@example.com", "--customer", "acme"],
        ):
            assert runner.invoke(app, setup).exit_code == 0, setup
        (where / "given.txt").write_text("x\n", encoding="utf-8")
        (where / "a-directory").mkdir()
        (where / "latin1.txt").write_bytes("Grüße\n".encode("latin-1"))
        (where / "empty.txt").write_bytes(b"")
        yield where
    finally:
        os.chdir(old)
        os.environ.update(saved)


def _odd_file(workdir: Path, kind: str) -> Path:
    return {
        "missing": workdir / "no-such-file.txt",
        "directory": workdir / "a-directory",
        "not_utf8": workdir / "latin1.txt",
        "empty": workdir / "empty.txt",
    }[kind]


def test_the_tree_has_the_commands_we_know() -> None:
    assert len(COMMANDS) > 60
    assert ("list", "import") in COMMANDS and ("preview",) in COMMANDS


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_names_of_nothing_end_in_a_sentence(workdir: Path, path: tuple[str, ...]) -> None:
    args = _args(path, workdir / "given.txt")
    result = CliRunner().invoke(app, args, input="pw\npw\n")
    _no_traceback(result, args)


FILE_CASES = [
    (path, p.name, kind)
    for path, command in sorted(COMMANDS.items())
    for p in command.params
    if _is_file(p)
    for kind in ODD_FILES
]


@pytest.mark.parametrize(
    ("path", "param", "kind"),
    FILE_CASES,
    ids=[f"{' '.join(c[0])}-{c[1]}-{c[2]}" for c in FILE_CASES],
)
def test_a_file_it_cannot_use_ends_in_a_sentence(
    workdir: Path, path: tuple[str, ...], param: str, kind: str
) -> None:
    args = _args(path, workdir / "given.txt", odd=(param, _odd_file(workdir, kind)))
    result = CliRunner().invoke(app, args, input="pw\npw\n")
    _no_traceback(result, args)
    if kind in ("missing", "directory"):
        assert result.exit_code != 0, (args, result.output)
