"""Shared fixtures: a real server app in a temporary folder, keys, bundles.

The database is SQLite in the data folder, or, with ``OVERAIR_TEST_DATABASE=postgresql``, a fresh database
per test on a PostgreSQL server the run starts itself (``postgres_server.py``), copied from a template that
already has the migrations. Its URL is in ``OVERAIR_DATABASE_URL`` for the whole test, so the servers and
commands a test starts (``overair serve``, ``overair fsck``, a ``Settings()`` of its own) use it too. On
PostgreSQL overair never makes a server key of its own, so the run makes one, as an operator does, and
names it in ``OVERAIR_SERVER_KEY_FILE`` for every test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from starlette.testclient import TestClient

from overair.app import OverairApp, create_app
from overair.config import Settings

ROOT = Path(__file__).resolve().parent.parent
KEY_PATTERN = re.compile(r"oa_[A-Za-z0-9_-]{43}")

DATABASE = os.environ.get("OVERAIR_TEST_DATABASE", "sqlite").strip().lower() or "sqlite"
"""The backend the tests run on: ``sqlite`` (the default) or ``postgresql``."""
ON_POSTGRES = DATABASE == "postgresql"


def pytest_configure(config: pytest.Config) -> None:
    if DATABASE not in ("sqlite", "postgresql"):
        raise pytest.UsageError(f"OVERAIR_TEST_DATABASE={DATABASE!r}: use sqlite or postgresql.")


def pytest_report_header() -> str:
    return f"overair database: {DATABASE}"


def _touches_no_database(item: pytest.Item) -> bool:
    """Marked so, or a unit test (pure logic) that does not build a server on the ``settings`` fixture."""
    if item.get_closest_marker("no_database"):
        return True
    return "tests/unit/" in item.path.as_posix() and "settings" not in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL run leaves out the tests that touch no database (the SQLite run has them all)."""
    if not ON_POSTGRES:
        return
    left_out = [item for item in items if _touches_no_database(item)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not _touches_no_database(item)]


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The run's PostgreSQL server (None on SQLite), with the migrated template test databases copy, and
    the deployment's server key in ``OVERAIR_SERVER_KEY_FILE``."""
    if not ON_POSTGRES:
        yield None
        return
    from overair.packages import signing

    key_file = tmp_path_factory.mktemp("server-key") / "server-key.pem"
    key_file.write_bytes(signing.private_key_pem(signing.generate_private_key()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVERAIR_SERVER_KEY_FILE", str(key_file))
        yield from _postgres_server()


def _postgres_server() -> Iterator[Any]:
    from overair.db import make_engine, migrate
    from postgres_server import PostgresMissing, PostgresServer

    def migrate_url(url: str) -> None:
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()

    try:
        server = PostgresServer()
    except PostgresMissing as exc:
        pytest.exit(str(exc), returncode=1)
    try:
        server.start()
        server.create_template(migrate_url)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """The run's S3-compatible server (Swift with s3api, ``s3_server.py``) with the bucket ``BUCKET``.

    Missing packages fail the tests that need it (never a skip): `make system-deps` installs them."""
    import boto3

    from s3_server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, SwiftMissing, SwiftS3Server

    try:
        server = SwiftS3Server()
    except SwiftMissing as exc:
        pytest.fail(str(exc))
    try:
        server.start()
        client = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

        def create_bucket() -> None:
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):  # an earlier try got through
                client.create_bucket(Bucket=BUCKET)

        server.wait_until(create_bucket)  # a 503 while the servers behind the proxy start
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_settings(s3_server: Any, request: pytest.FixtureRequest) -> dict[str, str]:
    """``OVERAIR_*`` settings (lower-case names) for a fresh prefix of the test bucket on ``s3_server``."""
    from s3_server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY

    prefix = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:60] + f"-{time.monotonic_ns()}"
    return {
        "blob_url": f"s3://{BUCKET}/{prefix}",
        "s3_endpoint": s3_server.endpoint,
        "s3_region": REGION,
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SECRET_KEY,
    }


@pytest.fixture(scope="module", autouse=True)
def _module_database(postgres: Any) -> Iterator[None]:
    """On PostgreSQL, a database for the module-scoped fixtures (a server shared by a module's tests)."""
    if postgres is None:
        yield
        return
    url = postgres.create()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVERAIR_DATABASE_URL", url)
        yield
    postgres.drop(url)


@pytest.fixture(autouse=True)
def database_url(
    request: pytest.FixtureRequest, postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """This test's database URL: "" on SQLite (the default file in the data folder), else a fresh
    PostgreSQL database, also set as ``OVERAIR_DATABASE_URL``."""
    if postgres is None:
        yield os.environ.get("OVERAIR_DATABASE_URL", "")
        return
    url = postgres.create()
    monkeypatch.setenv("OVERAIR_DATABASE_URL", url)
    yield url
    postgres.drop(url)


@pytest.fixture
def another_database(postgres: Any, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Make another database besides the test's own (for a second, separate server): its URL.

    Migrated and without rows, or with ``empty=True`` without even the schema. On SQLite "" (each data
    folder has its own file) unless ``empty``: then a new file's URL.
    """
    made: list[str] = []

    def make(empty: bool = False) -> str:
        if postgres is None:
            return f"sqlite:///{tmp_path / f'empty-{len(made)}.db'}" if empty else ""
        made.append(postgres.create(template=None) if empty else postgres.create())
        return made[-1]

    yield make
    for url in made:
        postgres.drop(url)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        database_url=database_url,
        cache_recheck_seconds=60.0,
        allowed_hosts="testserver",
        _env_file=None,
    )


class MovableClock:
    """The wall clock plus an offset a test moves forward, so nothing sleeps to let time pass."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def server(settings: Settings, clock: MovableClock) -> OverairApp:
    return create_app(settings, clock=clock)


@pytest.fixture
def admin_key(server: OverairApp) -> str:
    created = server.state.access_keys.ensure_initial_key()
    assert created is not None
    return str(created.key)


@pytest.fixture
def api(server: OverairApp, admin_key: str) -> Iterator[TestClient]:
    """The management API with the admin key."""
    with TestClient(server, base_url="http://testserver") as client:
        client.headers["Authorization"] = f"Bearer {admin_key}"
        yield client


@pytest.fixture
def device(server: OverairApp) -> Iterator[TestClient]:
    """A client without credentials, as devices are."""
    with TestClient(server, base_url="http://testserver") as client:
        yield client


def make_zip(files: dict[str, bytes]) -> bytes:
    """A zip archive holding ``files``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def bundle(text: str = "Welcome", **extra: bytes) -> bytes:
    """A small bundle whose content depends on ``text``."""
    return make_zip(
        {
            "index.js": f"render('{text}')".encode(),
            "styles/main.css": b"body { color: black }",
            "assets/logo.png": b"\x89PNG fake image bytes",
            **{name.replace("__", "/"): data for name, data in extra.items()},
        }
    )


def publish(
    api: TestClient,
    app: str = "CoolApp",
    deployment: str = "Production",
    content: bytes | None = None,
    **options: object,
) -> httpx.Response:
    """POST a release through the management API."""
    import json

    options.setdefault("target_version", "1.0.0")
    return api.post(
        f"/api/v1/apps/{app}/deployments/{deployment}/releases",
        files={
            "package": (
                "bundle.zip",
                content if content is not None else bundle(str(options)),
                "application/zip",
            )
        },
        data={"release": json.dumps(options)},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """``overair serve`` in a child process on 127.0.0.1, as a user starts it."""

    def __init__(self, data_dir: Path, port: int, *args: str, env: dict[str, str] | None = None) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        env = {
            **os.environ,
            "OVERAIR_DATA_DIR": str(data_dir),
            "OVERAIR_PORT": str(port),
            "NO_COLOR": "1",
            "COLUMNS": "200",
            **(env or {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "overair.main", "serve", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: kill() takes granian's workers too
        )
        self.output = ""
        self.key = self._wait()

    def _wait(self) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        key = ""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError(f"overair serve exited:\n{self.output}")
            self.output += line
            if not key and (found := KEY_PATTERN.search(line)):
                key = found.group(0)
            if "Press Ctrl+C to stop" in self.output:
                break
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    return key
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"overair serve did not start:\n{self.output}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()

    def kill(self) -> None:
        """SIGKILL the whole host, granian's worker processes included, as a crash or ``kill -9`` would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    @property
    def metrics_key(self) -> str:
        """The key ``/metrics`` asks for (made by the server on first start)."""
        return (self.data_dir / "metrics-key").read_text().strip()


@contextlib.contextmanager
def running_server(data_dir: Path) -> Iterator[LiveServer]:
    """`overair serve` on 127.0.0.1 for the duration of the block."""
    server = LiveServer(data_dir, free_port())
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def admin_api(server: LiveServer) -> Iterator[httpx.Client]:
    """overair's management API on a live server, with its admin key."""
    headers = {"Authorization": f"Bearer {server.key}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers) as client:
        yield client


def codepush_harness(server_url: str, deployment_key: str, steps: list[dict[str, Any]], sdk: str) -> Any:
    """Run ``tests/compat/codepush_harness.js``: the real ``code-push`` SDK (``sdk`` version) takes
    ``steps`` (check, download, report…) against ``server_url``; what each step answered, as JSON."""
    compat = Path(__file__).parent / "compat"
    payload = {"sdk": sdk, "serverUrl": server_url, "deploymentKey": deployment_key, "steps": steps}
    done = subprocess.run(
        ["node", str(compat / "codepush_harness.js")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def ensure_npm_packages(folder: Path, *required: str) -> None:
    """`npm ci` in ``folder`` unless every ``required`` package is installed (`make test` installs them)."""
    if all((folder / "node_modules" / name).exists() for name in required):
        return
    if shutil.which("npm") is None:
        pytest.fail("npm is not installed: these tests need Node.js and npm (run `make npm-deps`).")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, check=True)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    with running_server(tmp_path / "server-data") as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CLI config path of the test's own (no login yet), and wide output for stable assertions."""
    path = tmp_path / "config.json"
    monkeypatch.setenv("OVERAIR_CONFIG", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("OVERAIR_SERVER", raising=False)
    monkeypatch.delenv("OVERAIR_ACCESS_KEY", raising=False)
    return path


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, for the console's browser tests; Playwright never downloads a browser
    here."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run `make system-deps` (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the `overair` command in-process: (exit status, stdout, stderr); never a traceback."""
    from overair.main import run

    try:
        run(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def scrape_headers(client: TestClient) -> dict[str, str]:
    """The ``Authorization`` header that reads ``/metrics`` of the app behind ``client``."""
    return {"Authorization": f"Bearer {client.app.state.scrape_access.key}"}  # type: ignore[attr-defined]


def refusal_code(call: Callable[[], object]) -> str:
    """The code of the domain error ``call`` raises, or "ok": one column of the rule tables."""
    from overair.errors import OverairError

    try:
        call()
    except OverairError as exc:
        return exc.code
    return "ok"


@dataclasses.dataclass
class Answer:
    """What an ASGI app sent: status, headers (lower-case names) and the whole body."""

    status: int
    headers: dict[str, str]
    body: bytes


def call_asgi(
    app: Any,
    method: str,
    path: str,
    *,
    query: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    chunks: Sequence[bytes] = (b"",),
    hang_up: bool = False,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> Answer | None:
    """Call ``app`` as an ASGI server would, with exactly these bytes (no client library normalising
    anything): ``path`` decoded, ``query`` raw, headers latin-1, the body in ``chunks``, and then a
    disconnect when ``hang_up``. None when the app sent nothing."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": quote(path).encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": client,
        "server": ("testserver", 80),
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": hang_up or i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    answers: list[Answer] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])}
            answers.append(Answer(message["status"], sent, b""))
        elif message["type"] == "http.response.body" and answers:
            answers[-1].body += message.get("body", b"")

    async def main() -> None:
        await app(scope, receive, send)

    anyio.run(main)
    assert len(answers) <= 1, f"{method} {path} answered {len(answers)} times"
    return answers[0] if answers else None


def documented_verify() -> Callable[..., bool]:
    """The ``verify`` function of the Python block in docs/webhooks.md, as a reader copies it."""
    docs = ROOT / "docs" / "webhooks.md"
    blocks = re.findall(r"^```python\n(.*?)^```", docs.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE)
    scope: dict[str, Any] = {}
    exec(compile(blocks[0], str(docs), "exec"), scope)  # the documented snippet itself
    verify: Callable[..., bool] = scope["verify"]
    return verify


@dataclasses.dataclass
class ReceivedHook:
    """One POST a webhook receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclasses.dataclass
class HookReceiver:
    """A webhook receiver on 127.0.0.1: records each POST and answers the next status of ``answers``
    (then ``always``; a 3xx names ``/elsewhere`` as its Location)."""

    url: str = ""
    received: list[ReceivedHook] = dataclasses.field(default_factory=list)
    answers: list[int] = dataclasses.field(default_factory=list)
    always: int = 200
    arrived: Any = None  # a threading.Condition, notified on each POST

    def wait_for(self, count: int, timeout: float = 30) -> list[ReceivedHook]:
        """The POSTs received once there are ``count`` (a server's worker sends them: waited for, up to
        ``timeout`` seconds)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
        assert len(self.received) >= count, f"{len(self.received)} deliveries received, not {count}"
        return list(self.received)


@contextlib.contextmanager
def receiving_webhooks() -> Iterator[HookReceiver]:
    """A real HTTP server in a thread that webhook deliveries are posted to (``.url``)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = HookReceiver(arrived=threading.Condition())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = state.answers.pop(0) if state.answers else state.always
            with state.arrived:
                state.received.append(ReceivedHook(self.path, dict(self.headers.items()), body))
                state.arrived.notify_all()
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


RN_FIXTURE = ROOT / "tests" / "fixtures" / "rn-bundle-app"
HERMESC = RN_FIXTURE / "node_modules/react-native/sdks/hermesc/linux64-bin/hermesc"
"""react-native 0.74.7's own Hermes compiler (bytecode version 96), from the fixture's npm packages."""


def hermes_compile(source: str, workdir: Path, *, base: Path | None = None) -> bytes:
    """Hermes bytecode for the JavaScript ``source``, compiled by the real ``hermesc`` (optimised, as a
    release build does); against the bytecode file ``base`` (``-base-bytecode``) when given."""
    ensure_npm_packages(RN_FIXTURE, "react-native")
    workdir.mkdir(parents=True, exist_ok=True)
    js, out = workdir / "in.js", workdir / "out.hbc"
    js.write_text(source)
    command = [str(HERMESC), "-emit-binary", "-O", "-w", "-out", str(out), str(js)]
    if base is not None:
        command.insert(1, f"-base-bytecode={base}")
    subprocess.run(command, check=True, capture_output=True)
    return out.read_bytes()


HERMES_ALPHABET = "abcdefghijklmnopqrstuvwxyz ABC0123456789-é漢字"


def hermes_program(seed: int, functions: int, long_strings: bool = False, huge: int = 0) -> str:
    """Generated JavaScript: functions with string literals (short, long, UTF-16), objects, arrays and
    regular expressions, so every table of the bytecode file is used; ``huge`` functions have more than
    32 KB of bytecode each, so their headers overflow into large ones."""
    rng = random.Random(seed)
    lines = [
        f"function huge{n}(a) {{ "
        + " ".join(f"a = a.f{k}(a, {rng.randrange(10**6)}) + {k};" for k in range(3000))
        + " return a; }"
        for n in range(huge)
    ]
    for i in range(functions):
        size = rng.randrange(300, 700) if long_strings and i % 7 == 0 else rng.randrange(1, 40)
        text = "".join(rng.choice(HERMES_ALPHABET) for _ in range(size))
        lines.append(
            f"function f{i}(a, b) {{ var s = {text!r}; if (a > {rng.randrange(100)}) {{ return s + a; }}"
            f" return [s, b, {{k{i}: a, n: {rng.random()}}}, /x{i}+y/g.test(b)]; }}"
        )
    lines.append(f"print(f0(1, 'x') + f{functions - 1}(2, 'y'));")
    return "\n".join(lines)


def hermes_edit(source: str, seed: int) -> str:
    """``source`` with one line inserted near the start: shifts every later offset."""
    lines = source.split("\n")
    lines.insert(1 + seed % 5, f"function inserted{seed}() {{ return 'a brand new string {seed}'; }}")
    return "\n".join(lines)


@contextlib.contextmanager
def database_at(url: str, revision: str) -> Iterator[Any]:
    """A database migrated only up to ``revision``, as an older overair left it: a connection inside the
    migration's transaction, to add the rows that version had (upgrade tests)."""
    from alembic import command

    from overair.db import _alembic_config, make_engine

    engine = make_engine(url)
    config = _alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            yield connection
    finally:
        engine.dispose()


def add_old_app(connection: Any, name: str) -> int:
    """Insert an app row as migrations up to 0024 know it (before any service could); its id."""
    from sqlalchemy import text

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    connection.execute(
        text(
            "INSERT INTO apps (name, platforms, distribution, release_sequence, created_at) "
            "VALUES (:name, 'ios,android', 'hybrid', 0, :now)"
        ),
        {"name": name, "now": now},
    )
    return int(
        connection.execute(text("SELECT id FROM apps WHERE name = :name"), {"name": name}).scalar_one()
    )
