"""The Hermes half of ``make bench-delta``: update sizes when the bundle is Hermes bytecode.

The app is tests/fixtures/rn-bundle-app (react-native 0.74.7) plus real npm libraries (@babel/parser,
@babel/types, @babel/generator, esprima, acorn, js-yaml, yaml, node-forge, react-devtools-core, dayjs,
semver, fast-xml-parser, regjsparser, ast-types) that Metro bundles as ``react-native bundle`` does for a
Hermes release (``--dev false --minify false``: hermesc optimises), plus react-dom's development build
(18.2.0, from the JavaScript half's cache) as a library whose version is bumped. ``npm ci`` installs the
fixture's exact packages into ``benchmarks/.cache/rn-app`` and the Metro bundle is cached there (both
ignored by git; made once, a few minutes). react-native's own ``hermesc`` compiles every version.

Scenarios, from the base release: a one-line fix that changes a string, one that adds a new string
(the line changed), the same with the line added (every later line number in the debug info moves),
about 60 and about 300 new lines of app code (each line with its own new strings), and react-dom
18.2.0 → 18.3.1. Columns: the full download (zip), the CodePush diff archive, and overair deltas with
the release compiled plainly (what overair did before), compiled against the base's bytecode
(``hermesc -base-bytecode``), with the bytecode transform (format 2), and with both; then the build and
apply times of the last. Every delta is applied to the base and checked against the target's manifest,
so every size is of a patch that rebuilt the exact target bytes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from delta import CACHE, codepush_diff_size, npm_install, zip_size
from overair.packages import apply_delta, build_delta_between, delta_format, tree_manifest, verify_tree

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "rn-bundle-app"
APP = CACHE / "rn-app"
HERMESC = APP / "node_modules/react-native/sdks/hermesc/linux64-bin/hermesc"
BUNDLE = "CodePush/index.android.bundle"
LIBRARIES = (
    "@babel/parser", "@babel/types", "@babel/generator", "@babel/template", "esprima", "acorn",
    "js-yaml", "yaml", "node-forge/dist/forge.min.js", "react-devtools-core/dist/backend.js", "dayjs",
    "semver", "fast-xml-parser", "regjsparser", "ast-types",
)  # fmt: skip
GOALS = {"one line, new string": 3_400, "~60 lines": 50_000, "~300 lines": 98_000}
"""Bytes, for the delta with both: react-native-update (Pushy)'s published figures."""


def metro_bundle() -> str:
    """The app's Metro bundle (JavaScript), made once into the cache."""
    cached = APP / "bundle.js"
    if cached.exists():
        return cached.read_text()
    APP.mkdir(parents=True, exist_ok=True)
    for name in ("App.js", "app.json", "babel.config.js", "metro.config.js", "logo.png", "package.json",
                 "package-lock.json"):  # fmt: skip
        shutil.copy2(FIXTURE / name, APP / name)
    requires = "".join(f"  require({name!r}),\n" for name in LIBRARIES)
    (APP / "libs.js").write_text(f"export const libs = [\n{requires}];\n")
    index = (FIXTURE / "index.js").read_text()
    (APP / "index.js").write_text(
        index.replace("import App from './App';", "import App from './App';\nimport {libs} from './libs';\n")
        + "global.__libs = libs;\n"
    )
    if not (APP / "node_modules" / "react-native").exists():
        print("npm ci of tests/fixtures/rn-bundle-app into benchmarks/.cache/rn-app (once) ...", flush=True)
        npm = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
        if subprocess.run(npm, cwd=APP, check=False).returncode != 0:
            sys.exit("npm ci of the react-native app failed")
    print("Metro bundle of the react-native app (once) ...", flush=True)
    command = [
        "npx", "--no", "react-native", "bundle", "--platform", "android", "--dev", "false",
        "--minify", "false", "--entry-file", "index.js", "--bundle-output", str(cached) + ".tmp",
        "--assets-dest", str(APP / "assets-out"),
    ]  # fmt: skip
    # the CLI can stay up (idle) after it has written everything: wait for its last line, not its exit
    with subprocess.Popen(
        command, cwd=APP, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as run:
        assert run.stdout is not None
        output = []
        for line in run.stdout:
            output.append(line)
            if "Done copying assets" in line:
                break
        try:
            run.wait(timeout=30)
        except subprocess.TimeoutExpired:
            run.terminate()
    if "Done copying assets" not in "".join(output):
        sys.exit("react-native bundle failed:\n" + "".join(output[-20:]))
    Path(str(cached) + ".tmp").rename(cached)
    return cached.read_text()


def library(version: str) -> str:
    """react-dom's development build, as a module the app carries (real code, unminified)."""
    source = (npm_install(version) / "react-dom" / "cjs" / "react-dom.development.js").read_text()
    return f"\nfunction __reactDom(module, exports, require) {{\n{source}\n}}\n"


APP_FUNCTION = "  function App() {\n"


def new_lines(count: int) -> str:
    """``count`` lines of new app code (a screen listing order rows), each with its own new strings."""
    lines = [f"    var rows = [];  // order summary, {count} lines\n"]
    for i in range(count - 2):
        lines.append(
            f'    rows.push({{key: "row-{i}", label: "Item {i} of the order: " + (props && props.name{i}),'
            f' price: {i * 3 + 1}.99, note: "Ships in {i % 9 + 1} days"}});\n'
        )
    lines.append('    global.__orderRows = rows.length + " rows";\n')
    return "".join(lines)


def scenarios(base: str, library_old: str, library_new: str) -> dict[str, str]:
    """Target JavaScript for each scenario."""
    assert base.count(APP_FUNCTION) == 1 and base.count('children: "Welcome to CoolApp"') == 1
    with_props = APP_FUNCTION.replace("App()", "App(props)")
    return {
        "one line, changed string": base.replace('"Welcome to CoolApp"', '"Welcome to CoolApp!"'),
        "one line, new string": base.replace(
            '"Welcome to CoolApp"', '["Welcome to CoolApp", "Offline: changes sync later"]'
        ),
        "one line added, new string": base.replace(
            APP_FUNCTION, APP_FUNCTION + '    global.__hotfix = "cart total rounds to cents";\n'
        ),
        "~60 lines": base.replace(APP_FUNCTION, with_props + new_lines(60)),
        "~300 lines": base.replace(APP_FUNCTION, with_props + new_lines(300)),
        "library bump": base.replace(library_old, library_new),
    }


def compile_js(source: str, out: Path, base: Path | None = None) -> float:
    """Compile with the project's hermesc as a release build does; seconds taken."""
    js = out.with_suffix(".js")
    js.write_text(source)
    command = [str(HERMESC), "-emit-binary", "-O", "-w", "-out", str(out), str(js)]
    if base is not None:
        command.insert(1, f"-base-bytecode={base}")
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def folder(root: Path, bytecode: Path) -> Path:
    (root / "CodePush" / "assets").mkdir(parents=True)
    shutil.copy2(bytecode, root / BUNDLE)
    shutil.copy2(FIXTURE / "logo.png", root / "CodePush" / "assets" / "logo.png")
    return root


def verified_delta(old: Path, new: Path, transforms: bool) -> tuple[int, float, float]:
    """(size, build seconds, apply seconds) of the delta, after checking it rebuilds ``new`` exactly."""
    started = time.perf_counter()
    delta = build_delta_between(old, new, transforms=transforms)
    built = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        apply_delta(old, delta, Path(scratch) / "out")
        verify_tree(Path(scratch) / "out", tree_manifest(new))
        applied = time.perf_counter() - started
    assert delta_format(delta) in (1, 2)
    return len(delta), built, applied


def measure(name: str, work: Path, base_hbc: Path, base_dir: Path, source: str) -> dict[str, object]:
    plain_hbc, based_hbc = work / f"{name}-plain.hbc", work / f"{name}-based.hbc"
    compile_js(source, plain_hbc)
    compile_js(source, based_hbc, base=base_hbc)
    plain_dir = folder(work / f"{name}-plain", plain_hbc)
    based_dir = folder(work / f"{name}-based", based_hbc)
    both, built, applied = verified_delta(base_dir, based_dir, transforms=True)
    return {
        "scenario": name,
        "full": zip_size(based_dir),
        "codepush": codepush_diff_size(base_dir, based_dir),
        "plain": verified_delta(base_dir, plain_dir, transforms=False)[0],
        "base": verified_delta(base_dir, based_dir, transforms=False)[0],
        "transform": verified_delta(base_dir, plain_dir, transforms=True)[0],
        "both": both,
        "build": built,
        "apply": applied,
    }


def run() -> list[dict[str, object]]:
    """Build the bundles, measure every scenario, print the table; returns the rows."""
    old_library, new_library = library("18.2.0"), library("18.3.1")
    base_js = metro_bundle() + old_library
    with tempfile.TemporaryDirectory(prefix="overair-bench-hermes-") as scratch:
        work = Path(scratch)
        base_hbc = work / "base.hbc"
        compile_js(base_js, base_hbc)
        base_dir = folder(work / "base", base_hbc)
        rows = [
            measure("".join(c if c.isalnum() else "_" for c in name), work, base_hbc, base_dir, js)
            | {"scenario": name}
            for name, js in scenarios(base_js, old_library, new_library).items()
        ]
        size = base_hbc.stat().st_size
    print("\nHermes: react-native 0.74.7 app + npm libraries, compiled by its hermesc (bytecode 96):")
    print(f"{size:,} bytes of bytecode. Delta columns in bytes; build/apply: the 'both' delta.\n")
    header = (
        f"{'scenario':<26} {'full (zip)':>10} {'CodePush':>10} {'plain':>9} {'-base-bc':>9} "
        f"{'transform':>9} {'both':>9} {'build s':>7} {'apply s':>7}  goal"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        goal = GOALS.get(str(row["scenario"]))
        met = goal is not None and int(str(row["both"])) <= goal
        verdict = "" if goal is None else f"<= {goal:,} " + ("met" if met else "MISSED")
        print(
            f"{row['scenario']:<26} {row['full']:>10,} {row['codepush']:>10,} {row['plain']:>9,} "
            f"{row['base']:>9,} {row['transform']:>9,} {row['both']:>9,} {row['build']:>7.2f} "
            f"{row['apply']:>7.2f}  {verdict}"
        )
    return rows
