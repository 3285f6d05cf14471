"""A throwaway S3-compatible server for the test run: OpenStack Swift from Debian with its ``s3api``
middleware and tempauth, plus memcached, listening on 127.0.0.1 on free ports.

One replica on one device in a temporary folder (Swift's object server keeps metadata in extended
attributes, which the temporary folder must support), ``mount_check = false``, every server in a single
process (``workers = 0``), all started at once. The rings (one device each) are written directly in
``swift-ring-builder``'s file format (:func:`write_ring`), which Swift checks by loading them. Startup takes
two to three seconds on an idle machine; :meth:`SwiftS3Server.stop` ends the processes and removes the
folder, and they end with the test run anyway.

S3 credentials: access key ``test:tester``, secret ``testing``, region ``us-east-1``.
"""

from __future__ import annotations

import array
import ctypes
import gzip
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ACCESS_KEY = "test:tester"
SECRET_KEY = "testing"
REGION = "us-east-1"
BUCKET = "overair-test"

_BINARIES = ("swift-proxy-server", "swift-account-server", "swift-container-server", "swift-object-server")
_SERVERS = {"account": "account", "container": "container", "object": "object"}

_PART_POWER = 4


def write_ring(path: Path, port: int) -> None:
    """A ring of one device on ``port`` with one replica, in the file format ``swift-ring-builder`` writes
    (gzip of ``R1NG``, format version, JSON metadata, the partition table). Written here because building
    three rings with Swift's builder costs a second of start-up before the proxy can start."""
    meta = {
        "byteorder": sys.byteorder,
        "devs": [{"device": "d1", "id": 0, "ip": "127.0.0.1", "meta": "", "port": port, "region": 1,
                  "weight": 1.0, "zone": 1}],
        "part_shift": 32 - _PART_POWER,
        "replica_count": 1,
        "version": 1,
    }  # fmt: skip
    body = json.dumps(meta, sort_keys=True).encode()
    table = array.array("H", [0] * 2**_PART_POWER)  # every partition on device 0
    with gzip.open(path, "wb") as ring:
        ring.write(b"R1NG" + struct.pack("!H", 1) + struct.pack("!I", len(body)) + body + table.tobytes())


def _die_with_parent(user: str | None = None) -> Callable[[], None]:
    """In the child (as ``user`` if given): end when the test run ends, even if it is killed (Linux's
    ``PR_SET_PDEATHSIG``, set after changing user, which would clear it)."""

    def prepare() -> None:
        if user is not None:
            account = pwd.getpwnam(user)
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)

    return prepare


class SwiftMissing(RuntimeError):
    """Swift or memcached is not installed."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _supports_xattrs(folder: Path) -> bool:
    probe = folder / ".xattr-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.overair", b"1")
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)
    return True


def find_binaries() -> dict[str, str]:
    """Paths of the Swift servers and memcached; :class:`SwiftMissing` names the packages to install."""
    found = {name: shutil.which(name) for name in (*_BINARIES, "memcached")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise SwiftMissing(
            f"The S3 test server is not installed (missing {', '.join(missing)}): run `make system-deps` "
            "(apt-get install swift swift-proxy swift-account swift-container swift-object memcached)."
        )
    return {name: str(path) for name, path in found.items()}


def _conf(kind: str, port: int, root: Path, user: str, body: str) -> str:
    return (
        f"[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 0\nuser = {user}\n"
        f"swift_dir = {root}\ndevices = {root / 'devices'}\nmount_check = false\n"
        f"log_name = {kind}\nlog_level = WARNING\nlog_address = {root / 'no-syslog'}\n\n{body}"
    )


_PROXY = """
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo
  dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{memcached}

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
"""


class SwiftS3Server:
    """Swift with s3api in a temporary folder; ``endpoint`` is its S3 URL once :meth:`start` returned."""

    def __init__(self) -> None:
        self.binaries = find_binaries()
        base = Path(tempfile.gettempdir())
        if not _supports_xattrs(base):
            base = Path(__file__).resolve().parent.parent / ".pytest_cache"
            base.mkdir(exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="overair-swift-", dir=base))
        if not _supports_xattrs(self.root):
            shutil.rmtree(self.root, ignore_errors=True)
            raise SwiftMissing(
                f"{base} does not support extended attributes, which Swift's object server needs: set "
                "TMPDIR to a folder on a file system that does (ext4, xfs, tmpfs)."
            )
        self.ports = {name: _free_port() for name in ("proxy", "memcached", *_SERVERS)}
        self.endpoint = f"http://127.0.0.1:{self.ports['proxy']}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def _spawn(self, name: str, *command: str, user: str | None = None) -> None:
        log = (self.root / f"{name}.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                preexec_fn=_die_with_parent(user),
            )
        )
        log.close()

    def wait_until(self, request: Callable[[], object], timeout: float = 30.0) -> None:
        """Repeat ``request`` until the servers behind the proxy answer it (a 503 while they start)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                request()
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Swift did not answer {exc}:\n{self._logs()}") from exc
            time.sleep(0.1)

    @staticmethod
    def _listening(port: int) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def _logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for log in self.root.glob("*.log")
        )

    def start(self, timeout: float = 30.0) -> None:
        """Write the configuration and rings, start memcached and the four servers, wait for the proxy."""
        root, user = self.root, pwd.getpwuid(os.getuid()).pw_name
        (root / "devices" / "d1").mkdir(parents=True)
        (root / "swift.conf").write_text(
            "[swift-hash]\nswift_hash_path_suffix = overair-tests\nswift_hash_path_prefix = overair\n\n"
            "[storage-policy:0]\nname = Policy-0\ndefault = yes\n"
        )
        for kind, egg in _SERVERS.items():
            conf = _conf(kind, self.ports[kind], root, user, f"[pipeline:main]\npipeline = {kind}-server\n\n"
                         f"[app:{kind}-server]\nuse = egg:swift#{egg}\n")  # fmt: skip
            (root / f"{kind}-server.conf").write_text(conf)
        proxy = _PROXY.replace("{memcached}", str(self.ports["memcached"]))
        (root / "proxy-server.conf").write_text(_conf("proxy", self.ports["proxy"], root, user, proxy))
        memcached = [self.binaries["memcached"], "-l", "127.0.0.1", "-p", str(self.ports["memcached"])]
        self._spawn("memcached", *memcached, user="nobody" if os.geteuid() == 0 else None)
        for kind in _SERVERS:
            self._spawn(kind, self.binaries[f"swift-{kind}-server"], str(root / f"{kind}-server.conf"))
        for kind in _SERVERS:
            write_ring(root / f"{kind}.ring.gz", self.ports[kind])
        self._spawn("proxy", self.binaries["swift-proxy-server"], str(root / "proxy-server.conf"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"a Swift server exited at start:\n{self._logs()}")
            if all(self._listening(self.ports[name]) for name in ("memcached", *_SERVERS)):
                try:
                    if httpx.get(f"{self.endpoint}/healthcheck", timeout=1).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"Swift did not answer within {timeout} s:\n{self._logs()}")

    def stop(self) -> None:
        """End every process and remove the folder."""
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
