"""docs/cli-reference.md is generated from the commands and can never drift from them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import typer

from overair.main import build

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "gen_cli_reference.py"


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_committed_reference_is_up_to_date(generator: ModuleType) -> None:
    """Fails when a command or option changed without `make docs`."""
    assert generator.main(["--check"]) == 0, "docs/cli-reference.md is out of date: run `make docs`"


def test_check_mode_reports_drift(
    generator: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "cli-reference.md"
    stale.write_text(generator.render().replace("--rollout-percentage", "--rollout"), encoding="utf-8")
    assert generator.main(["--check", "--output", str(stale)]) == 1
    assert "is out of date" in capsys.readouterr().err
    assert generator.main(["--check", "--output", str(tmp_path / "missing.md")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_writing_then_checking_agrees(generator: ModuleType, tmp_path: Path) -> None:
    target = tmp_path / "docs" / "cli-reference.md"
    assert generator.main(["--output", str(target)]) == 0
    assert generator.main(["--check", "--output", str(target)]) == 0


def test_every_command_and_option_is_documented(generator: ModuleType) -> None:
    """Walk the real command tree: each command has a section, each option and argument a row."""
    text = generator.render()
    assert text == generator.render()  # deterministic
    root = typer.main.get_command(build())
    seen = 0
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None) or {}
        leaves = [(f"overair {name} {sub}", c) for sub, c in subcommands.items()] or [
            (f"overair {name}", command)
        ]
        for path, leaf in leaves:
            level = "###" if subcommands else "##"
            section = text.split(f"\n{level} {path}\n", 1)
            assert len(section) == 2, f"no section for {path}"
            body = section[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
            for param in leaf.params:
                label = param.opts[0] if param.param_type_name == "option" else param.name.upper()
                assert f"| `{label}`" in body, f"{path}: {label} is not in its table"
            seen += 1
    assert seen >= 20


def test_reference_shows_types_defaults_and_required(generator: ModuleType) -> None:
    text = generator.render()
    push = text.split("\n### overair release push-update\n", 1)[1].split("\n### ", 1)[0]
    assert "| `--project-name` | TEXT | **required** |" in push
    assert "| `--bundle` | PATH |  |" in push  # optional: --react-native builds the bundle instead
    assert "| `--deployment` | TEXT | `Production` |" in push
    assert "| `--mandatory` | [true\\|false] |" in push
    assert "| `--allow-destructive-model-change` | flag |" in push
    assert "| `--build-number` | INTEGER (≥ 0) |" in push
    assert "overair release push-update --project-name TEXT --target-version TEXT [OPTIONS]" in push
    serve = text.split("\n## overair serve\n", 1)[1].split("\n## ", 1)[0]
    assert "| `--port` | INTEGER (1–65535) |" in serve
    create = text.split("\n### overair app create\n", 1)[1].split("\n### ", 1)[0]
    assert "overair app create [OPTIONS] NAME" in create
    assert "| `--platform` | TEXT, repeatable |" in create
