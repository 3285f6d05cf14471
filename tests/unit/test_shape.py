"""The shape of the code, checked: domain modules know nothing of HTTP or the CLI, classes stay small, and
the unit tests mirror ``src/``.

Each domain package (releases, auth, metrics, webhooks) has an ``api.py``: that module is the package's
HTTP surface and may speak HTTP (webhooks' ``transport.py`` sends its requests); every other module is
domain code, which raises structured errors
(``overair.errors``) and leaves statuses to ``overair.problems`` and command lines to ``overair.cli``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src" / "overair"
UNIT = TESTS / "unit"
DOMAIN_PACKAGES = ("releases", "auth", "metrics", "jobs", "selection", "storage", "rollouts", "webhooks")
SURFACES = {"api.py", "transport.py"}
"""A package's HTTP surfaces: the routes it answers (``api.py``), the requests it sends (``transport.py``)."""
HTTP_MODULES = ("fastapi", "starlette", "httpx", "overair.problems", "overair.protocols")
CLI_WORDS = re.compile(
    r"(?<![\w-])--[a-z][a-z-]{2,}"  # a flag
    r"|\boverair (?:app|release|deployment|binary|keys|access-key|metrics) [a-z-]+"  # a command
    r"|\boverair login\b"
)
HTTP_WORDS = re.compile(r"\b(?:status_code|HTTP ?[1-5]\d\d|[1-5]\d\d (?:Not Found|Conflict|Unauthorized))\b")


def domain_modules() -> list[Path]:
    return sorted(
        path
        for package in DOMAIN_PACKAGES
        for path in (SRC / package).rglob("*.py")
        if path.name not in SURFACES
    )


def strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant but docstrings (which may name commands: they are for developers)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            for statement in node.body:
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                    docstrings.add(id(statement.value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


@pytest.mark.parametrize("path", domain_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_domain_modules_know_no_http_and_no_cli(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for name in names:
                assert not name.startswith(HTTP_MODULES), f"{path.name}:{node.lineno} imports {name}"
        if isinstance(node, ast.ClassDef):  # errors carry a kind, not an HTTP status or title
            for statement in node.body:
                targets = statement.targets if isinstance(statement, ast.Assign) else []
                names = {t.id for t in targets if isinstance(t, ast.Name)}
                assert not names & {"status", "status_code", "title"}, f"{path.name}:{statement.lineno}"
    for line, text in strings(tree):
        assert not CLI_WORDS.search(text), f"{path.name}:{line} tells a CLI command: {text!r}"
        assert not HTTP_WORDS.search(text), f"{path.name}:{line} names an HTTP status: {text!r}"


def test_the_checks_catch_what_they_look_for() -> None:
    assert CLI_WORDS.search("finish it with --rollout-percentage 100")
    assert CLI_WORDS.search("run overair release list")
    assert not CLI_WORDS.search("created by overair serve")
    assert not CLI_WORDS.search("a one-line hotfix -- costs little")
    assert HTTP_WORDS.search("answer HTTP 409")
    assert not HTTP_WORDS.search("409 releases")


def test_no_class_is_over_400_lines() -> None:
    sizes = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                sizes.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(SRC)}:{node.name}"))
    too_large = [f"{where} ({size} lines)" for size, where in sizes if size >= 400]
    assert not too_large, "classes a reader cannot hold in mind: " + ", ".join(too_large)


def test_unit_tests_mirror_src() -> None:
    """``tests/unit/<package>/`` holds the unit tests of ``overair.<package>``; a module directly in
    ``tests/unit/`` tests a top-level module of the same name (``test_errors.py``: ``overair/errors.py``), or
    is this file, which checks the whole tree."""
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    folders = {p.name for p in UNIT.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= packages, (
        f"folders of tests/unit/ that are no package of src/overair: {folders - packages}"
    )
    modules = {p.stem for p in SRC.glob("*.py")}
    strays = [
        p.name
        for p in UNIT.glob("test_*.py")
        if p.name != Path(__file__).name and p.stem.removeprefix("test_") not in modules
    ]
    assert not strays, f"unit tests of no top-level module: move them to tests/unit/<package>/: {strays}"


def test_test_module_names_are_unique() -> None:
    """pytest imports test modules by basename (there is no ``__init__.py`` in tests/)."""
    seen: dict[str, list[str]] = {}
    for path in TESTS.rglob("test_*.py"):
        if "node_modules" not in path.parts:
            seen.setdefault(path.name, []).append(str(path.relative_to(TESTS)))
    assert not {name: paths for name, paths in seen.items() if len(paths) > 1}
