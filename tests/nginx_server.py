"""Debian's nginx in front of overair servers, for the tests: a round-robin load balancer and a CDN stand-in.

``NginxServer(upstreams)`` writes a configuration into a temporary folder and starts ``nginx`` on a free
port on 127.0.0.1, in the foreground of a child process. Every request is logged with the upstream that
answered it (``upstreams_seen()``), so a test can show that requests reached every host. Blob downloads
(``/v1/blobs/``) are cached as a CDN would cache them; nothing else is.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

LOG_FORMAT = "$request_method $uri $status $upstream_addr $upstream_cache_status"
_CONFIG = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
    log_format overair '{log_format}';
    access_log {root}/access.log overair;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    proxy_cache_path {root}/cache keys_zone=blobs:10m max_size=1g inactive=7d use_temp_path=off;
    client_max_body_size 0;
    upstream overair {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name _;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_request_buffering off;
        proxy_buffering on;
        proxy_next_upstream error timeout http_502;
        proxy_connect_timeout 2s;
        proxy_read_timeout 120s;
        proxy_send_timeout 120s;
        location /v1/blobs/ {{
            proxy_pass http://overair;
            proxy_cache blobs;
            proxy_cache_valid 200 365d;
            proxy_cache_lock on;
        }}
        location / {{
            proxy_pass http://overair;
        }}
    }}
}}
"""


class NginxMissing(RuntimeError):
    """Debian's nginx is not installed."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NginxServer:
    """nginx on 127.0.0.1, balancing round-robin over ``upstreams`` (``host:port`` strings)."""

    def __init__(self, upstreams: list[str]) -> None:
        binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if binary is None:
            raise NginxMissing(
                "nginx is not installed: run `make system-deps` (apt-get install nginx-light)."
            )
        self.root = Path(tempfile.mkdtemp(prefix="overair-nginx-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(
            f"        server {upstream} max_fails=1 fail_timeout=5s;" for upstream in upstreams
        )
        config = _CONFIG.format(
            root=self.root,
            port=self.port,
            servers=servers,
            log_format=LOG_FORMAT,
            # as root, workers run as root too: the temporary folder belongs to the test run
            user="user root;" if os.geteuid() == 0 else "",
        )
        (self.root / "nginx.conf").write_text(config)
        self.process = subprocess.Popen(
            [binary, "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                printed = self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""
                shutil.rmtree(self.root, ignore_errors=True)
                raise RuntimeError(f"nginx exited:\n{printed}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not start within 20 s:\n{self.errors()}")

    def errors(self) -> str:
        """nginx's error log so far."""
        log = self.root / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def access_log(self) -> list[list[str]]:
        """Every request so far: method, path, status, the upstream(s) tried, the cache status."""
        log = self.root / "access.log"
        if not log.exists():
            return []
        return [line.split(" ") for line in log.read_text().splitlines() if line]

    def upstreams_seen(self, path_prefix: str = "/") -> set[str]:
        """The upstream addresses that answered requests whose path starts with ``path_prefix``."""
        seen: set[str] = set()
        for _method, path, _status, upstream, *_rest in self.access_log():
            if path.startswith(path_prefix) and upstream != "-":
                # a retried request lists every upstream tried, the one that answered last
                seen.add(upstream.split(", ")[-1])
        return seen

    def stop(self) -> None:
        """Stop nginx and remove its folder."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
