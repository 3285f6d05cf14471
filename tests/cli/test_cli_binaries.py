"""``overair binary``: describe a project's store binary, register it, list the registered ones."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import LiveServer
from conftest import run_cli as overair
from overair.cli.binaries import describe_project, fingerprint, read_descriptor_file
from overair.cli.errors import CliError
from overair.main import run
from overair.packages import Descriptor, parse_descriptor

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "rn-project"
RES = "android/app/src/main/res"
IOS = "ios/CoolApp/Images.xcassets"
ICON_FILES = (
    f"{RES}/mipmap-hdpi/ic_launcher.png",
    f"{RES}/mipmap-hdpi/ic_launcher_round.png",
    f"{IOS}/AppIcon.appiconset/Contents.json",
    f"{IOS}/AppIcon.appiconset/icon-60@2x.png",
)
SPLASH_FILES = (
    f"{RES}/drawable/launch_screen.png",
    f"{RES}/layout/launch_screen.xml",
    f"{IOS}/SplashImage.imageset/splash.png",
    "ios/CoolApp/LaunchScreen.storyboard",
)
# The fixture's fingerprints, written down so that a change of the formula (which would make every
# registered binary look different from every new bundle) cannot go unnoticed.
FIXTURE_ICON = "edf38765ac9af289bec549c77cd9de9dbdf3eba3e10d861551df94686924c859"
FIXTURE_SPLASH = "88442b507ff5f49dfaf1fe4ba23004e058f2a4c95c9c1a96feadd433a71befaf"
HASH_A = "a" * 64


def rn_project(tmp_path: Path, name: str = "CoolApp") -> Path:
    """The fixture project, copied and "installed" (fake_node_modules renamed to node_modules)."""
    project = tmp_path / name
    shutil.copytree(FIXTURE, project)
    (project / "fake_node_modules").rename(project / "node_modules")
    return project


def expected_fingerprint(root: Path, files: tuple[str, ...]) -> str:
    entries = sorted(f"{f}:{hashlib.sha256((root / f).read_bytes()).hexdigest()}" for f in files)
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
        for p in sorted(root.rglob("*"))
    }


# -- describe: React Native ------------------------------------------------------------------------


def test_describe_the_react_native_fixture(tmp_path: Path) -> None:
    project = rn_project(tmp_path)
    descriptor = describe_project(project)
    assert descriptor == Descriptor(
        app_name="CoolApp",
        runtime_version="0.74.3",
        native_modules={"react-native-ble-plx": "3.1.0"},
        launcher_icon=expected_fingerprint(project, ICON_FILES),
        splash_screen=expected_fingerprint(project, SPLASH_FILES),
    )
    assert (descriptor.launcher_icon, descriptor.splash_screen) == (FIXTURE_ICON, FIXTURE_SPLASH)
    assert parse_descriptor(descriptor.to_json()) == descriptor


def test_describing_is_deterministic_side_effect_free_and_independent_of_the_folder(tmp_path: Path) -> None:
    first = rn_project(tmp_path / "one")
    second = rn_project(tmp_path / "two", name="Elsewhere")
    before = snapshot(first)
    assert describe_project(first) == describe_project(first) == describe_project(second)
    assert snapshot(first) == before


@pytest.mark.parametrize("changed", [ICON_FILES[0], ICON_FILES[3]])
def test_changing_a_launcher_icon_changes_only_the_icon_fingerprint(tmp_path: Path, changed: str) -> None:
    project = rn_project(tmp_path)
    before = describe_project(project)
    (project / changed).write_bytes(b"PNG-new-icon")
    after = describe_project(project)
    assert after.launcher_icon != before.launcher_icon
    assert after.splash_screen == before.splash_screen
    assert (after.app_name, after.runtime_version, after.native_modules) == (
        before.app_name,
        before.runtime_version,
        before.native_modules,
    )


def test_adding_or_removing_an_icon_changes_the_fingerprint(tmp_path: Path) -> None:
    project = rn_project(tmp_path)
    before = describe_project(project).launcher_icon
    added = project / RES / "mipmap-xxhdpi" / "ic_launcher.png"
    added.parent.mkdir()
    added.write_bytes(b"PNG-icon-xxhdpi")
    assert describe_project(project).launcher_icon not in (before, None)
    added.unlink()
    assert describe_project(project).launcher_icon == before
    (project / ICON_FILES[1]).unlink()
    assert describe_project(project).launcher_icon != before


@pytest.mark.parametrize("changed", SPLASH_FILES)
def test_changing_the_splash_screen_changes_only_its_fingerprint(tmp_path: Path, changed: str) -> None:
    project = rn_project(tmp_path)
    before = describe_project(project)
    (project / changed).write_bytes(b"new splash")
    after = describe_project(project)
    assert after.splash_screen != before.splash_screen
    assert after.launcher_icon == before.launcher_icon


def test_other_files_and_hidden_files_do_not_count(tmp_path: Path) -> None:
    project = rn_project(tmp_path)
    before = describe_project(project)
    (project / "index.js").write_text("console.log('changed');\n")
    (project / RES / "values" / "strings.xml").write_text("<resources/>\n")
    (project / RES / "mipmap-hdpi" / "other.png").write_bytes(b"not a launcher icon")
    (project / IOS / "AppIcon.appiconset" / ".DS_Store").write_bytes(b"finder")
    hidden = project / "ios" / ".backup" / "Images.xcassets" / "AppIcon.appiconset" / "icon.png"
    hidden.parent.mkdir(parents=True)
    hidden.write_bytes(b"an old icon")
    assert describe_project(project) == before


def test_no_icon_or_splash_files_give_no_fingerprint(tmp_path: Path) -> None:
    project = rn_project(tmp_path)
    shutil.rmtree(project / "android")
    shutil.rmtree(project / "ios")
    descriptor = describe_project(project)
    assert descriptor.launcher_icon is None and descriptor.splash_screen is None
    assert descriptor.native_modules == {"react-native-ble-plx": "3.1.0"}
    assert set(descriptor.to_json()) == {"format", "app_name", "runtime_version", "native_modules"}


def add_package(project: Path, name: str, version: str, *, dev: bool = False, **files: str) -> None:
    """Install a fake package ``name`` (its files by relative path) and list it in package.json."""
    folder = project / "node_modules" / name
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": name, "version": version}))
    for relative, text in files.items():
        path = folder / relative.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    manifest = json.loads((project / "package.json").read_text())
    manifest.setdefault("devDependencies" if dev else "dependencies", {})[name] = f"^{version}"
    (project / "package.json").write_text(json.dumps(manifest))


def test_what_counts_as_a_native_module(tmp_path: Path) -> None:
    project = rn_project(tmp_path)
    add_package(project, "with-ios", "1.0.0", ios__Module_m="// objc")
    add_package(project, "with-podspec", "2.0.0", **{"WithPodspec.podspec": "Pod::Spec.new"})
    add_package(
        project,
        "@scope/with-config",
        "3.0.0",
        **{"react-native.config.js": "module.exports = {dependency: {platforms: {android: {}}}};"},
    )
    add_package(
        project,
        "config-without-platforms",
        "4.0.0",
        **{
            "react-native.config.js": "module.exports = "
            "{dependency: {platforms: {ios: null, android: null}}};"
        },
    )
    add_package(project, "js-only", "5.0.0", lib__index_js="module.exports = 1;")
    add_package(project, "dev-native-tool", "6.0.0", dev=True, android__build_gradle="// gradle")
    assert describe_project(project).native_modules == {
        "@scope/with-config": "3.0.0",
        "react-native-ble-plx": "3.1.0",
        "with-ios": "1.0.0",
        "with-podspec": "2.0.0",
    }


def test_the_installed_versions_count_not_the_ranges(tmp_path: Path) -> None:
    project = rn_project(tmp_path)
    for name, version in (("react-native", "0.74.5"), ("react-native-ble-plx", "3.2.1")):
        (project / "node_modules" / name / "package.json").write_text(json.dumps({"version": version}))
    descriptor = describe_project(project)
    assert descriptor.runtime_version == "0.74.5"
    assert descriptor.native_modules == {"react-native-ble-plx": "3.2.1"}


def test_the_app_name_falls_back_to_package_json(tmp_path: Path) -> None:
    project = rn_project(tmp_path)
    (project / "app.json").unlink()
    assert describe_project(project).app_name == "coolapp"
    (project / "app.json").write_text('{"displayName": "Cool"}')
    assert describe_project(project).app_name == "coolapp"


def test_describe_prints_the_descriptor(tmp_path: Path, config: Path, capsys) -> None:
    project = rn_project(tmp_path)
    code, out, err = overair(capsys, "binary", "describe", str(project))
    assert code == 0 and err == ""
    assert json.loads(out) == describe_project(project).to_json()
    assert out.startswith('{\n  "format": 1,')


def test_describe_writes_a_file_that_register_accepts(tmp_path: Path, config: Path, capsys) -> None:
    project = rn_project(tmp_path)
    target = tmp_path / "binary-1.0.0.json"
    code, out, _ = overair(capsys, "binary", "describe", str(project), "--output", str(target))
    assert code == 0
    assert "Wrote the descriptor of CoolApp, runtime 0.74.3, 1 native module" in out and str(target) in out
    assert "overair binary register" in out
    assert read_descriptor_file(target) == describe_project(project)


# -- describe: the plain layout ---------------------------------------------------------------------


def plain_project(tmp_path: Path, **native: object) -> Path:
    project = tmp_path / "flutter-app"
    project.mkdir()
    facts = native or {
        "app_name": "CoolApp",
        "runtime_version": "3.22.2",
        "native_modules": {"flutter_blue_plus": "1.32.0", "camera": "0.11.0"},
    }
    (project / "native.json").write_text(json.dumps(facts))
    return project


def test_describe_the_plain_layout(tmp_path: Path) -> None:
    project = plain_project(tmp_path)
    (project / "icons" / "android").mkdir(parents=True)
    (project / "icons" / "android" / "ic_launcher.png").write_bytes(b"icon")
    (project / "icons" / "ios.png").write_bytes(b"ios icon")
    (project / "icons" / ".DS_Store").write_bytes(b"finder")
    (project / "icons" / ".cache").mkdir()
    (project / "icons" / ".cache" / "thumb.png").write_bytes(b"thumbnail")
    (project / "splash").mkdir()
    (project / "splash" / "splash.png").write_bytes(b"splash")
    descriptor = describe_project(project)
    assert descriptor == Descriptor(
        app_name="CoolApp",
        runtime_version="3.22.2",
        native_modules={"camera": "0.11.0", "flutter_blue_plus": "1.32.0"},
        launcher_icon=expected_fingerprint(project, ("icons/android/ic_launcher.png", "icons/ios.png")),
        splash_screen=expected_fingerprint(project, ("splash/splash.png",)),
    )
    (project / "splash" / "splash.png").write_bytes(b"new splash")
    changed = describe_project(project)
    assert changed.splash_screen != descriptor.splash_screen
    assert changed.launcher_icon == descriptor.launcher_icon


def test_plain_layout_without_image_folders_states_no_image_facts(tmp_path: Path) -> None:
    project = plain_project(tmp_path, app_name="CoolApp")
    (project / "icons").mkdir()
    assert describe_project(project) == Descriptor(app_name="CoolApp")
    assert describe_project(project).to_json() == {"format": 1, "app_name": "CoolApp"}


def test_fingerprint_of_nothing_is_none(tmp_path: Path) -> None:
    assert fingerprint(tmp_path, []) is None


# -- describe: errors --------------------------------------------------------------------------------


def describe_error(capsys, path: Path) -> str:
    code, out, err = overair(capsys, "binary", "describe", str(path))
    assert code == 1 and out == ""
    assert err.startswith("Error: ")
    return err.replace("\n", "")


def test_react_native_project_without_node_modules(tmp_path: Path, config: Path, capsys) -> None:
    project = tmp_path / "CoolApp"
    shutil.copytree(FIXTURE, project)
    err = describe_error(capsys, project)
    assert "without node_modules" in err and "run npm install first" in err


@pytest.mark.parametrize("missing", ["react-native", "react-native-ble-plx", "lodash"])
def test_a_dependency_that_is_not_installed(tmp_path: Path, config: Path, capsys, missing: str) -> None:
    project = rn_project(tmp_path)
    shutil.rmtree(project / "node_modules" / missing)
    err = describe_error(capsys, project)
    assert f'"{missing}" is in package.json but not installed' in err and "run npm install first" in err


def test_an_installed_package_without_a_version(tmp_path: Path, config: Path, capsys) -> None:
    project = rn_project(tmp_path)
    (project / "node_modules" / "react-native-ble-plx" / "package.json").write_text("{}")
    err = describe_error(capsys, project)
    assert 'react-native-ble-plx/package.json has no "version"' in err


def test_a_folder_of_neither_layout_explains_both(tmp_path: Path, config: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    err = describe_error(capsys, tmp_path / "empty")
    assert "not a project overair can describe" in err
    assert "React Native project" in err and "native.json" in err and "icons/" in err
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "package.json").write_text('{"dependencies": {"react": "18.0.0"}}')
    err = describe_error(capsys, tmp_path / "web")
    assert "has no react-native dependency" in err and "native.json" in err
    err = describe_error(capsys, tmp_path / "missing")
    assert "is not a folder" in err


def test_broken_project_files_are_named(tmp_path: Path, config: Path, capsys) -> None:
    project = rn_project(tmp_path)
    (project / "package.json").write_text('{"dependencies": ')
    err = describe_error(capsys, project)
    assert str(project / "package.json") in err and "not valid JSON" in err and "line 1" in err
    plain = plain_project(tmp_path, app_name="CoolApp")
    (plain / "native.json").write_text('["CoolApp"]')
    err = describe_error(capsys, plain)
    assert str(plain / "native.json") in err and "JSON object" in err


def test_bad_native_json_fields(tmp_path: Path, config: Path, capsys) -> None:
    project = plain_project(tmp_path, app_name="CoolApp", launcher_icon=HASH_A)
    err = describe_error(capsys, project)
    assert "unknown fields: launcher_icon" in err and "icons/" in err
    (project / "native.json").write_text(json.dumps({"native_modules": ["camera"]}))
    err = describe_error(capsys, project)
    assert "invalid descriptor" in err and "native_modules" in err


def test_both_layouts_at_once_is_refused(tmp_path: Path, config: Path, capsys) -> None:
    project = rn_project(tmp_path)
    (project / "native.json").write_text('{"app_name": "CoolApp"}')
    err = describe_error(capsys, project)
    assert "both a React Native project and a plain layout" in err


def test_describe_project_raises_cli_errors(tmp_path: Path) -> None:
    project = tmp_path / "CoolApp"
    shutil.copytree(FIXTURE, project)
    with pytest.raises(CliError, match="npm install"):
        describe_project(project)


def test_describe_output_that_cannot_be_written(tmp_path: Path, config: Path, capsys) -> None:
    project = rn_project(tmp_path)
    code, _, err = overair(
        capsys, "binary", "describe", str(project), "--output", str(tmp_path / "no" / "such" / "d.json")
    )
    assert code == 1 and "Cannot write" in err


# -- register and list: local checks ----------------------------------------------------------------


def register(capsys, descriptor: Path, *extra: str) -> tuple[int, str, str]:
    return overair(
        capsys,
        "binary",
        "register",
        "--project-name",
        "CoolApp",
        "--version",
        "1.0.0",
        "--descriptor",
        str(descriptor),
        *extra,
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"app_name": "CoolApp", ', "is not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"app_name": "CoolApp", "icon": "x"}', "unknown fields in the descriptor: icon"),
        ('{"launcher_icon": "not-a-hash"}', '"launcher_icon" must be a SHA-256'),
        ('{"native_modules": {"react-native-ble-plx": 3}}', "react-native-ble-plx"),
        ('{"format": 2}', "format 2 is not supported"),
    ],
)
def test_register_checks_the_descriptor_file(
    tmp_path: Path, config: Path, capsys, content: str, problem: str
) -> None:
    path = tmp_path / "descriptor.json"
    path.write_text(content)
    code, out, err = register(capsys, path)
    err = err.replace("\n", "")
    assert code == 1 and out == ""
    assert f"{path} is not a valid descriptor" in err and problem in err
    assert "Not logged in" not in err  # checked before talking to any server


def test_register_a_missing_descriptor_file(tmp_path: Path, config: Path, capsys) -> None:
    code, _, err = register(capsys, tmp_path / "nope.json")
    err = err.replace("\n", "")
    assert code == 1 and "nope.json does not exist" in err and "overair binary describe" in err


def test_register_needs_a_version_and_a_sane_build_number(tmp_path: Path, config: Path, capsys) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"app_name": "CoolApp"}')
    code, _, err = overair(
        capsys, "binary", "register", "--project-name", "CoolApp", "--version", " ", "--descriptor", str(path)
    )
    assert code == 1 and "--version needs the binary's exact version" in err
    code, _, err = register(capsys, path, "--build-number", "-1")
    assert code == 1 and "--build-number" in err
    code, _, err = overair(
        capsys, "binary", "register", "--project-name", "CoolApp", "--descriptor", str(path)
    )
    assert code == 1 and "--version" in err


def test_register_and_list_need_a_login(tmp_path: Path, config: Path, capsys) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"app_name": "CoolApp"}')
    code, _, err = register(capsys, path)
    assert code == 1 and "Not logged in" in err
    code, _, err = overair(capsys, "binary", "list", "--project-name", "CoolApp")
    assert code == 1 and "Not logged in" in err


# -- register and list against a server -------------------------------------------------------------


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    return live_server


@pytest.mark.slow
def test_register_and_list_binaries(tmp_path: Path, config: Path, server: LiveServer, capsys) -> None:
    config.write_text(json.dumps({"server": server.url, "access_key": server.key}))
    assert overair(capsys, "app", "create", "CoolApp")[0] == 0
    code, out, err = overair(capsys, "binary", "list", "--project-name", "CoolApp")
    assert code == 0 and "CoolApp has no registered binary" in out, err
    descriptor = tmp_path / "binary.json"
    assert (
        overair(capsys, "binary", "describe", str(rn_project(tmp_path)), "--output", str(descriptor))[0] == 0
    )

    code, out, err = register(capsys, descriptor, "--build-number", "7")
    assert code == 0, err
    assert "Registered CoolApp 1.0.0 build 7: CoolApp, runtime 0.74.3, 1 native module." in out
    plain = plain_project(tmp_path, app_name="CoolApp", runtime_version="0.75.0", native_modules={})
    code, out, _ = overair(capsys, "binary", "describe", str(plain), "--output", str(tmp_path / "2.json"))
    assert code == 0
    code, out, err = overair(
        capsys,
        "binary",
        "register",
        "--project-name",
        "CoolApp",
        "--version",
        "2.0.0",
        "--descriptor",
        str(tmp_path / "2.json"),
    )
    assert code == 0, err
    assert "Registered CoolApp 2.0.0: CoolApp, runtime 0.75.0, 0 native modules." in out

    code, out, err = overair(capsys, "binary", "list", "--project-name", "CoolApp")
    assert code == 0, err
    rows = [line for line in out.splitlines() if "CoolApp" in line and "0.7" in line]
    assert len(rows) == 2
    for row, expected in zip(
        rows, (("1.0.0", "7", "0.74.3", "1"), ("2.0.0", "-", "0.75.0", "0")), strict=True
    ):
        cells = [c.strip() for c in row.strip("│┃| ").split("│")]
        assert cells[:5] == [expected[0], expected[1], "CoolApp", expected[2], expected[3]]
        assert cells[5].endswith("UTC")

    code, out, err = register(capsys, descriptor, "--build-number", "7")  # again: replaces it
    assert code == 0, err
    code, out, err = overair(capsys, "binary", "list", "--project-name", "CoolApp")
    assert code == 0 and sum("1.0.0" in line for line in out.splitlines()) == 1

    # the server checks what only it knows: the app, and that the version is exact
    code, _, err = overair(
        capsys,
        "binary",
        "register",
        "--project-name",
        "CoolApp",
        "--version",
        "^1.0.0",
        "--descriptor",
        str(descriptor),
    )
    assert code == 2 and "^1.0.0" in err
    code, _, err = overair(
        capsys,
        "binary",
        "register",
        "--project-name",
        "Ghost",
        "--version",
        "1.0.0",
        "--descriptor",
        str(descriptor),
    )
    assert code == 2 and "Ghost" in err


def test_push_update_with_project_dir_is_checked_against_registered_binaries(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    live_server: LiveServer,
) -> None:
    """The seed's full-release rule end to end: describe, register, push the same project (accepted), add a
    native module and push again (refused, naming the module and the binary)."""
    import json as _json

    live = live_server
    config = tmp_path / "config.json"
    config.write_text(_json.dumps({"server": live.url, "access_key": live.key}))
    monkeypatch.setenv("OVERAIR_CONFIG", str(config))
    monkeypatch.setenv("COLUMNS", "200")
    project = tmp_path / "project"
    project.mkdir()
    native = {"app_name": "CoolApp", "runtime_version": "2.0.0", "native_modules": {"ble": "3.1.0"}}
    (project / "native.json").write_text(_json.dumps(native))
    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    (bundle_dir / "index.js").write_text("showWelcome('Welcome');")

    def cli(*args: str) -> tuple[int, str]:
        try:
            run(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out + err

    assert cli("app", "create", "CoolApp")[0] == 0
    assert cli("binary", "describe", str(project), "--output", str(tmp_path / "d.json"))[0] == 0
    register = [
        "binary",
        "register",
        "--project-name",
        "CoolApp",
        "--version",
        "1.0.0",
        "--build-number",
        "1",
    ]
    assert cli(*register, "--descriptor", str(tmp_path / "d.json"))[0] == 0
    push = [
        "release",
        "push-update",
        "--project-name",
        "CoolApp",
        "--target-version",
        "1.0.0",
        "--build-number",
        "1",
        "--bundle",
        str(bundle_dir),
        "--project-dir",
        str(project),
    ]
    code, out = cli(*push)
    assert code == 0 and "Released v1" in out and "Warning" not in out
    native["native_modules"]["react-native-nfc"] = "2.0.0"
    (project / "native.json").write_text(_json.dumps(native))
    (bundle_dir / "index.js").write_text("showWelcome('Welcome!'); nfc();")
    code, out = cli(*push)
    assert code == 2
    assert "new native module react-native-nfc 2.0.0 is not in 1.0.0 build 1" in " ".join(out.split())
