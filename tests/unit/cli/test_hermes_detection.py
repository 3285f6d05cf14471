"""Which React Native projects `push-update --react-native` compiles with hermesc (as their native build)."""

from __future__ import annotations

from pathlib import Path

import pytest

from overair.cli.hermes import uses_hermes

CASES = [
    ("android", {"android/gradle.properties": "hermesEnabled=true\n"}, True),
    ("android", {"android/gradle.properties": "newArchEnabled=false\n  hermesEnabled = true \n"}, True),
    ("android", {"android/gradle.properties": "hermesEnabled=false\n"}, False),
    ("android", {"android/gradle.properties": "# hermesEnabled=true\n"}, False),
    ("android", {}, False),
    ("android", {"ios/Podfile": "use_react_native!(:path => config[:reactNativePath])\n"}, False),
    ("ios", {"ios/Podfile": "use_react_native!(:path => config[:reactNativePath])\n"}, True),
    ("ios", {"ios/Podfile": "use_react_native!(\n  :hermes_enabled => false,\n)\n"}, False),
    ("ios", {"ios/Podfile": "use_react_native!(:hermes_enabled => true)\n"}, True),
    ("ios", {"android/gradle.properties": "hermesEnabled=true\n"}, False),
]


@pytest.mark.parametrize(("platform", "files", "expected"), CASES)
def test_hermes_is_used_as_the_native_build_decides(
    tmp_path: Path, platform: str, files: dict[str, str], expected: bool
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert uses_hermes(tmp_path, platform) is expected
