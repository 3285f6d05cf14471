"""Download sizes of an update: full package vs CodePush-style file diff vs overair binary delta.

    .venv/bin/python benchmarks/delta.py        (or: make bench-delta)

Bundles are made from real published JavaScript: ``npm install`` puts react, react-dom and scheduler
18.2.0 and 18.3.1 into ``benchmarks/.cache/`` (ignored by git; installed once). A bundle is what a
bundler ships: ``main.jsbundle`` (the minified production builds of the three packages, one after
another) plus the UMD builds as separate files and 12 PNG images (deterministic, generated here).

Scenarios, each from a base bundle (18.2.0) to a target:

* hotfix: one string of ``main.jsbundle`` changed;
* feature release: the real 18.3.1 builds;
* asset change: one image replaced by another.

Per scenario it prints the full download (the target as a zip archive), the CodePush diff archive
(changed files whole, zipped: ``overair.packages.diff``), the overair delta, the delta as a percentage
of the full download, and the time to build and to apply the delta (apply = write the new folder and
verify every file against the target manifest). Goals: hotfix <= 1 % of full, feature release <= 15 %.
Nothing is asserted; the exit status is 1 only when the benchmark cannot run (npm missing or failing).

Then the Hermes table (benchmarks/hermes_delta.py): the same sizes when the bundle is Hermes bytecode, with
and without ``hermesc -base-bytecode`` and the bytecode transform (docs/hermes.md).
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

from overair.packages import (
    apply_delta,
    build_delta,
    plan_diff,
    tree_manifest,
    verify_tree,
    write_diff_archive,
)

CACHE = Path(__file__).resolve().parent / ".cache"
VERSIONS = ("18.2.0", "18.3.1")
PACKAGES = ("react", "react-dom", "scheduler")
GOALS = {"hotfix": 1.0, "feature release": 15.0}


def npm_install(version: str) -> Path:
    """node_modules with react + react-dom ``version`` (installed once into the cache)."""
    folder = CACHE / f"react-{version}"
    modules = folder / "node_modules"
    if (modules / "react-dom" / "package.json").exists():
        return modules
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"private": true}\n')
    if shutil.which("npm") is None:
        sys.exit("npm is needed (Debian: apt-get install npm)")
    command = [
        "npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--no-package-lock",
        f"react@{version}", f"react-dom@{version}",
    ]  # fmt: skip
    if subprocess.run(command, cwd=folder, check=False).returncode != 0:
        sys.exit(f"npm install of react {version} failed")
    return modules


def png(width: int, height: int, seed: int) -> bytes:
    """A real PNG (RGB, zlib-compressed rows): smooth gradients plus noise, like a photo-ish asset."""
    rng = random.Random(seed)
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows += bytes(
                (
                    (x * 3 + seed * 17 + rng.randrange(24)) & 0xFF,
                    (y * 2 + seed * 31 + rng.randrange(24)) & 0xFF,
                    ((x + y) + seed * 7 + rng.randrange(24)) & 0xFF,
                )
            )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def min_files(modules: Path, kind: str) -> list[Path]:
    return sorted(p for name in PACKAGES for p in (modules / name / kind).glob("*.production.min.js"))


def make_bundle(root: Path, modules: Path) -> Path:
    """A bundle folder from one react installation."""
    main = b"".join(p.read_bytes() + b"\n" for p in min_files(modules, "cjs"))
    (root / "assets").mkdir(parents=True)
    (root / "main.jsbundle").write_bytes(main)
    for umd in min_files(modules, "umd"):
        (root / f"{umd.parent.parent.name}.{umd.name}").write_bytes(umd.read_bytes())
    for n in range(12):
        (root / "assets" / f"image{n:02d}.png").write_bytes(png(160, 120, seed=n))
    return root


def zip_size(root: Path) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "full.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for entry in tree_manifest(root):
                zf.write(root / entry.path, entry.path)
        return archive.stat().st_size


def codepush_diff_size(old: Path, new: Path) -> int:
    plan = plan_diff(tree_manifest(old), tree_manifest(new))
    if plan is None:
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "diff.zip"
        write_diff_archive(plan, archive, lambda e: (new / e.path).open("rb"))
        return archive.stat().st_size


def measure(name: str, old: Path, new: Path) -> dict[str, object]:
    old_manifest, new_manifest = tree_manifest(old), tree_manifest(new)
    started = time.perf_counter()
    delta = build_delta(
        old_manifest,
        new_manifest,
        lambda e: (old / e.path).read_bytes(),
        lambda e: (new / e.path).read_bytes(),
    )
    built = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out"
        started = time.perf_counter()
        apply_delta(old, delta, out)
        verify_tree(out, new_manifest)
        applied = time.perf_counter() - started
    full = zip_size(new)
    return {
        "scenario": name,
        "full": full,
        "codepush": codepush_diff_size(old, new),
        "delta": len(delta),
        "percent": 100.0 * len(delta) / full,
        "build": built,
        "apply": applied,
        "uncompressed": sum(e.size for e in new_manifest),
    }


def main() -> None:
    old_modules, new_modules = (npm_install(v) for v in VERSIONS)
    with tempfile.TemporaryDirectory(prefix="overair-bench-") as scratch:
        work = Path(scratch)
        base = make_bundle(work / "base", old_modules)
        release = make_bundle(work / "release", new_modules)

        hotfix = work / "hotfix"
        shutil.copytree(base, hotfix)
        main_js = (hotfix / "main.jsbundle").read_bytes()
        needle = b"Minified React error #"
        assert needle in main_js
        (hotfix / "main.jsbundle").write_bytes(main_js.replace(needle, b"Minified React failure #", 1))

        asset = work / "asset"
        shutil.copytree(base, asset)
        (asset / "assets" / "image05.png").write_bytes(png(160, 120, seed=99))

        rows = [
            measure("hotfix", base, hotfix),
            measure("feature release", base, release),
            measure("asset change", base, asset),
        ]

    print(f"Bundles: react + react-dom + scheduler {VERSIONS[0]} -> {VERSIONS[1]} minified production builds")
    print(f"(main.jsbundle + UMD files) and 12 PNG images; {rows[0]['uncompressed']:,} bytes uncompressed.")
    print(f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    header = (
        f"{'scenario':<16} {'full (zip)':>11} {'CodePush diff':>14} {'overair delta':>14} "
        f"{'delta/full':>10} {'build s':>8} {'apply s':>8}  goal"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        goal = GOALS.get(str(row["scenario"]))
        verdict = (
            "" if goal is None else f"<= {goal:g}% " + ("met" if float(row["percent"]) <= goal else "MISSED")
        )
        print(
            f"{row['scenario']:<16} {row['full']:>11,} {row['codepush']:>14,} {row['delta']:>14,} "
            f"{row['percent']:>9.2f}% {row['build']:>8.2f} {row['apply']:>8.2f}  {verdict}"
        )


if __name__ == "__main__":
    main()
    import hermes_delta  # the Hermes bytecode table (needs the npm react-native package)

    hermes_delta.run()
