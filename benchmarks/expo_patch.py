"""Expo launch asset: full download (gzip) vs the BSDIFF40 patch overair offers, on a real Metro bundle.

    .venv/bin/python benchmarks/expo_patch.py [--project APP]        (or: make bench-expo-patch)

The bundle is what ``react-native bundle --platform android --dev false`` (react-native 0.74.7 and Metro from
npm; ``make npm-deps`` installs them into the fixture) makes of tests/fixtures/rn-bundle-app. The update is
a one-line change of the app's ``App.js`` (the text it shows): Metro emits that module with the new string and
every other byte equal, so the benchmark changes that string in the bundle rather than rebundle a copy.

It prints the bundle's size, the full download as the server sends it gzip-compressed, the patch
(``overair.packages.bsdiff``), the patch as a percentage of the gzip download, whether
``overair.releases.launch_patches`` would offer it (at most ``MAX_RATIO`` of the gzip download), and the time
to build it and to verify it (bspatch-check plus SHA-256, as before it is stored). Goal: a one-line change
costs <= 1 % of the full download. Nothing is asserted; the exit status is 1 only when the bundle cannot be
built.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from overair.packages.bsdiff import build_patch, verify_patch
from overair.releases.launch_patches import MAX_RATIO, gzip_size, worth_offering

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "rn-bundle-app"
TEXT = b"Welcome to CoolApp"
GOAL_PERCENT = 1.0


def metro_bundle(project: Path, out: Path) -> bytes:
    """The minified Android bundle ``react-native bundle`` makes of ``project``."""
    if not (project / "node_modules" / "react-native").is_dir():
        sys.exit(f"{project}/node_modules has no react-native: run make npm-deps")
    if shutil.which("npx") is None:
        sys.exit("npx is needed (Debian: apt-get install npm)")
    bundle = out / "index.android.bundle"
    command = [
        "npx", "--no", "react-native", "bundle", "--platform", "android", "--dev", "false",
        "--entry-file", "index.js", "--bundle-output", str(bundle), "--assets-dest", str(out / "assets"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"react-native bundle failed:\n{done.stdout}{done.stderr}")
    return bundle.read_bytes()


def measure(name: str, old: bytes, new: bytes) -> dict[str, object]:
    started = time.perf_counter()
    patch = build_patch(old, new)
    built = time.perf_counter() - started
    started = time.perf_counter()
    verify_patch(old, patch, hashlib.sha256(new).hexdigest())
    verified = time.perf_counter() - started
    full = gzip_size(new)
    return {
        "scenario": name,
        "bundle": len(new),
        "gzip": full,
        "patch": len(patch),
        "percent": 100.0 * len(patch) / full,
        "offered": worth_offering(len(patch), full),
        "build": built,
        "verify": verified,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=FIXTURE, help="a React Native app with node_modules")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="overair-bench-") as scratch:
        base = metro_bundle(args.project.resolve(), Path(scratch))
    if base.count(TEXT) != 1:
        sys.exit(f"the bundle does not hold {TEXT!r} once: is {args.project} the rn-bundle-app fixture?")
    rows = [measure("one-line change", base, base.replace(TEXT, TEXT + b", version 2"))]

    print("Bundle: react-native bundle --platform android --dev false of tests/fixtures/rn-bundle-app")
    print(f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"A patch is offered when it is at most {MAX_RATIO:.0%} of the gzip download.\n")
    header = (
        f"{'scenario':<16} {'bundle':>10} {'full (gzip)':>12} {'bsdiff patch':>13} {'patch/gzip':>10} "
        f"{'offered':>8} {'build s':>8} {'verify s':>9}  goal"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        met = float(str(row["percent"])) <= GOAL_PERCENT
        verdict = f"<= {GOAL_PERCENT:g}% " + ("met" if met else "MISSED")
        print(
            f"{row['scenario']:<16} {row['bundle']:>10,} {row['gzip']:>12,} {row['patch']:>13,} "
            f"{row['percent']:>9.3f}% {'yes' if row['offered'] else 'no':>8} {row['build']:>8.2f} "
            f"{row['verify']:>9.3f}  {verdict}"
        )


if __name__ == "__main__":
    main()
