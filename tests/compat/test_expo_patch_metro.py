"""Launch-asset patches on a real Metro bundle: ``react-native bundle`` (react-native 0.74.7, Metro from npm)
bundles tests/fixtures/rn-bundle-app, a one-line change of its text makes the next bundle, and the BSDIFF40
patch overair builds gives that bundle through Debian's bspatch and through expo-updates' bspatch.c (read in
Python): a few hundred bytes where the gzip download is about 220 KB."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
from pathlib import Path

import pytest

from bspatch_reference import BSPATCH, debian_bspatch, reference_bspatch
from conftest import ROOT, ensure_npm_packages
from overair.packages.bsdiff import build_patch, verify_patch
from overair.releases.launch_patches import worth_offering

pytestmark = pytest.mark.slow

FIXTURE = ROOT / "tests" / "fixtures" / "rn-bundle-app"
TEXT = b"Welcome to CoolApp"


def metro_bundle(project: Path, out: Path) -> bytes:
    command = [
        "npx", "--no", "react-native", "bundle", "--platform", "android", "--dev", "false",
        "--entry-file", "index.js", "--bundle-output", str(out / "index.android.bundle"),
        "--assets-dest", str(out / "assets"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return (out / "index.android.bundle").read_bytes()


def test_a_one_line_change_of_a_metro_bundle_is_a_tiny_patch_every_applier_agrees_on(tmp_path: Path) -> None:
    ensure_npm_packages(FIXTURE, "react-native")
    old = metro_bundle(FIXTURE, tmp_path)
    assert old.count(TEXT) == 1  # App.js's text, as Metro emits it
    new = old.replace(TEXT, TEXT + b", version 2")  # what Metro emits for that one-line change of App.js

    patch = build_patch(old, new)
    verify_patch(old, patch, hashlib.sha256(new).hexdigest())
    assert reference_bspatch(old, patch) == new
    assert BSPATCH is not None, "bspatch is a system package: make system-deps"
    assert debian_bspatch(old, patch, tmp_path) == new
    full = len(gzip.compress(new))
    assert len(patch) < full / 100 and worth_offering(len(patch), full)
