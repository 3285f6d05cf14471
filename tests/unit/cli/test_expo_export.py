"""Reading `npx expo export` output: what is refused, naming the file and the problem (table-driven)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from overair.cli.errors import CliError
from overair.cli.expo import read_export, runtime_version_of
from overair.packages import InvalidBundle, expo


def write_export(dist: Path, metadata: Any, files: tuple[str, ...] = ("b/ios.js", "assets/a1")) -> Path:
    for name in files:
        (dist / name).parent.mkdir(parents=True, exist_ok=True)
        (dist / name).write_bytes(name.encode())
    (dist / "metadata.json").write_text(metadata if isinstance(metadata, str) else json.dumps(metadata))
    return dist


GOOD = {
    "version": 0,
    "bundler": "metro",
    "fileMetadata": {"ios": {"bundle": "b/ios.js", "assets": [{"path": "assets/a1", "ext": "png"}]}},
}


@pytest.mark.parametrize(
    ("metadata", "complaint"),
    [
        ("{not json", "metadata.json: not valid JSON"),
        ([], "must be a JSON object"),
        ({**GOOD, "version": 1}, '"version": 0'),
        ({**GOOD, "bundler": "webpack"}, "bundler 'webpack'"),
        ({**GOOD, "fileMetadata": None}, '"fileMetadata" is missing'),
        ({**GOOD, "fileMetadata": {"web": {}}}, 'neither "ios" nor "android"'),
        ({**GOOD, "fileMetadata": {"ios": {"bundle": "b/missing.js"}}}, 'names "b/missing.js"'),
        ({**GOOD, "fileMetadata": {"ios": {"bundle": "../etc/passwd"}}}, "not a plain relative path"),
        ({**GOOD, "fileMetadata": {"ios": {"bundle": "b/ios.js", "assets": {}}}}, "assets: must be a list"),
        (
            {**GOOD, "fileMetadata": {"ios": {"bundle": "b/ios.js", "assets": [{"path": "assets/a1"}]}}},
            "fileMetadata.ios.assets[0].ext: None is not a file extension",
        ),
        (
            {
                **GOOD,
                "fileMetadata": {"ios": {"bundle": "b/ios.js", "assets": [{"path": "x/y", "ext": "png"}]}},
            },
            'assets[0].path: names "x/y"',
        ),
    ],
)
def test_malformed_exports_are_refused_naming_file_and_problem(
    tmp_path: Path, metadata: Any, complaint: str
) -> None:
    dist = write_export(tmp_path / "dist", metadata)
    with pytest.raises(CliError) as refused:
        read_export(dist, [])
    assert complaint in str(refused.value) and str(dist) in str(refused.value)


def test_a_good_export_and_platform_choice(tmp_path: Path) -> None:
    dist = write_export(tmp_path / "dist", GOOD)
    (ios,) = read_export(dist, ["ios"])
    assert ios == expo.ExportedPlatform("ios", "b/ios.js", (("assets/a1", "png"),))
    with pytest.raises(CliError, match="no android bundle"):
        read_export(dist, ["android"])
    with pytest.raises(CliError, match="does not exist"):
        read_export(tmp_path / "elsewhere", [])


@pytest.mark.parametrize(
    ("config", "given", "expected"),
    [
        ({"runtimeVersion": "1.0.0"}, None, "1.0.0"),
        ({"runtimeVersion": {"policy": "appVersion"}, "version": "2.1.0"}, None, "2.1.0"),
        ({"runtimeVersion": "1.0.0"}, "exposdk:51.0.0", "exposdk:51.0.0"),
        ({"runtimeVersion": {"policy": "fingerprint"}}, None, None),
        ({}, None, None),
        ({}, "  ", None),
    ],
)
def test_runtime_version(config: dict[str, Any], given: str | None, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(CliError):
            runtime_version_of(config, given)
    else:
        assert runtime_version_of(config, given) == expected


def test_hash_is_base64url_sha256_without_padding() -> None:
    # spec §8.3: the hash of the CEUS fixture's png, from its SHA-256
    digest = "24272cdaeff82cc5facdaccd982a6f05b60c4504704bbf94c19a6388659880bb"
    assert expo.b64url_sha256(digest) == "JCcs2u_4LMX6zazNmCpvBbYMRQRwS7-UwZpjiGWYgLs"
    with pytest.raises(InvalidBundle):
        expo.check_runtime_version("")
