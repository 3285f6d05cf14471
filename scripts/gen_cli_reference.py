"""Generate docs/cli-reference.md from the ``overair`` commands themselves.

The reference is never written by hand: this script walks the click command tree that typer builds from
``overair.main.build()`` and writes one section per command, with its help text and a table of its options
and arguments (names, values, defaults, whether required). The output depends only on the code, so it is
the same on every machine.

    python scripts/gen_cli_reference.py           # (re)write docs/cli-reference.md  (make docs)
    python scripts/gen_cli_reference.py --check   # exit 1 if the committed file is out of date
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import typer
from typer import _click as click  # typer 0.29 vendors click as typer._click

from overair.cli.output import expand_optional_bools
from overair.main import build

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "cli-reference.md"
PROG = "overair"
"""The program name ``overair.main.run`` gives the root command."""

OPTIONAL_BOOLS: tuple[str, ...] = inspect.signature(expand_optional_bools).parameters["options"].default
"""Options that stand alone (meaning true) or take true/false: rewritten by the entry point before parsing."""

_TYPE_WORDS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH", "bool": "BOOLEAN"}


def _anchor(title: str) -> str:
    """The anchor GitHub gives a heading made of words, spaces and hyphens."""
    return title.lower().replace(" ", "-")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, no column breaks, no HTML tags."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "\\<")


def _help(command: click.Command) -> str:
    """The command's help text, as click would show it (``\\f`` cuts it, ``\\b`` lines are markers)."""
    text = (command.help or "").split("\f", 1)[0]
    lines = [line for line in inspect.cleandoc(text).splitlines() if line.strip() != "\b"]
    return "\n".join(lines).strip()


def _value(param: click.Parameter, ctx: click.Context) -> str:
    """What the parameter takes: a type word, its range, whether it repeats; empty for a flag."""
    if getattr(param, "is_flag", False):
        return "flag"
    if param.param_type_name == "option" and any(name in OPTIONAL_BOOLS for name in param.opts):
        return "[true\\|false]"
    label = str(param.display_type(ctx)).strip("<>")  # type: ignore[attr-defined]
    repeat = label.startswith("list[") or bool(getattr(param, "multiple", False))
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]
    ranged = label.endswith(" range")
    label = label.removesuffix(" range")
    word = _TYPE_WORDS.get(label, label.upper())
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if ranged or low is not None or high is not None:
        if low is not None and high is not None:
            word += f" ({low}–{high})"
        elif low is not None:
            word += f" (≥ {low})"
        elif high is not None:
            word += f" (≤ {high})"
    if repeat:
        word += ", repeatable"
    return word


def _default(param: click.Parameter) -> str:
    if param.required:
        return "**required**"
    default = param.default
    if default is None or callable(default):
        return ""
    if getattr(param, "is_flag", False):
        return "" if default is False else "on"
    if isinstance(default, (list, tuple)):
        return ", ".join(f"`{item}`" for item in default)
    return f"`{default}`" if str(default) else '`""`'


def _name(param: click.Parameter) -> str:
    if param.param_type_name == "argument":
        return f"`{(param.metavar or param.name or '').upper()}`"
    names = [*param.opts, *param.secondary_opts]
    return ", ".join(f"`{name}`" for name in names)


def _synopsis(path: str, params: Sequence[click.Parameter], ctx: click.Context) -> str:
    """``overair X --required VALUE [OPTIONS] ARG``: what a call looks like."""
    pieces = [path]
    optional = False
    for param in params:
        if param.param_type_name != "option":
            continue
        if param.required:
            pieces.append(f"{param.opts[0]} {_value(param, ctx).split(' ', 1)[0].split(',', 1)[0]}")
        else:
            optional = True
    if optional:
        pieces.append("[OPTIONS]")
    for param in params:
        if param.param_type_name == "argument":
            name = (param.metavar or param.name or "").upper()
            pieces.append(name if param.required else f"[{name}]")
    return " ".join(pieces)


def _visible(group: click.Command, ctx: click.Context) -> Iterator[tuple[str, click.Command]]:
    """The group's commands in the order it lists them (its registration order), hidden ones left out."""
    commands = getattr(group, "commands", None) or {}
    for name in group.list_commands(ctx):  # type: ignore[attr-defined]
        command = commands.get(name)
        if command is not None and not command.hidden:
            yield name, command


def _command_section(path: str, command: click.Command, ctx: click.Context, level: int) -> list[str]:
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    lines = [f"{'#' * level} {path}", ""]
    help_text = _help(command)
    if help_text:
        lines += [help_text, ""]
    lines += ["```text", _synopsis(path, params, ctx), "```", ""]
    if params:
        lines += ["| option or argument | value | default | description |", "|---|---|---|---|"]
        for param in params:
            description = _cell(getattr(param, "help", None) or "")
            envvar = param.envvar
            if envvar:
                names = envvar if isinstance(envvar, str) else ", ".join(envvar)
                description = f"{description} (environment: `{names}`)".strip()
            lines.append(f"| {_name(param)} | {_value(param, ctx)} | {_default(param)} | {description} |")
        lines.append("")
    return lines


def _tree(root: click.Command) -> Iterator[tuple[str, click.Command, click.Context, int]]:
    """Every command and group below ``root``: (full name, command, its context, heading level)."""
    root_ctx = click.Context(root, info_name=PROG)
    for name, command in _visible(root, root_ctx):
        ctx = click.Context(command, info_name=name, parent=root_ctx)
        path = f"{PROG} {name}"
        yield path, command, ctx, 2
        if getattr(command, "commands", None):
            for sub_name, sub in _visible(command, ctx):
                sub_ctx = click.Context(sub, info_name=sub_name, parent=ctx)
                yield f"{path} {sub_name}", sub, sub_ctx, 3


def render() -> str:
    """The whole reference, as Markdown."""
    root = typer.main.get_command(build())
    tree = list(_tree(root))
    lines = [
        "# `overair` command reference",
        "",
        "<!-- Generated by scripts/gen_cli_reference.py from the commands themselves: do not edit by hand.",
        "     Run `make docs` after changing a command; tests/unit/cli/test_cli_reference.py fails when this",
        "     file is out of date. -->",
        "",
        f"{_help(root)} Every command also takes `--help`. Options whose value is [true\\|false] may be "
        "given alone, meaning true (`--mandatory`), or with a value (`--mandatory false`). A guide to the "
        "commands is in [cli.md](cli.md); the first steps are in [getting-started.md](getting-started.md).",
        "",
    ]
    for path, _command, _ctx, level in tree:
        indent = "  " * (level - 2)
        lines.append(f"{indent}- [{path}](#{_anchor(path)})")
    lines.append("")
    for path, command, ctx, level in tree:
        if getattr(command, "commands", None):
            lines += [f"## {path}", ""]
            help_text = _help(command)
            if help_text:
                lines += [help_text, ""]
            subcommands = [name for name, _ in _visible(command, ctx)]
            lines += [", ".join(f"[{path} {name}](#{_anchor(f'{path} {name}')})" for name in subcommands), ""]
        else:
            lines += _command_section(path, command, ctx, level)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/cli-reference.md from the overair commands.")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from what would be generated"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the file to write or check")
    args = parser.parse_args(argv)
    output: Path = args.output
    text = render()
    if args.check:
        try:
            current = output.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != text:
            shown = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
            what = "does not exist" if current is None else "is out of date with the commands"
            print(
                f"{shown} {what}: run `make docs` (python scripts/gen_cli_reference.py) and commit it.",
                file=sys.stderr,
            )
            return 1
        print(f"{output.name} is up to date.")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists() and output.read_text(encoding="utf-8") == text:
        print(f"{output.name} is up to date.")
    else:
        output.write_text(text, encoding="utf-8")
        print(f"Wrote {output}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
