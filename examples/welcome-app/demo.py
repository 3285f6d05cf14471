"""`make demo`: the seeds' OTA story on your machine, start to finish, without typing anything.

An app ships with a typo on its welcome screen; the developer fixes it and pushes an update; the app
restarts, asks to install it, and greets the user with the fixed text. Then a broken update goes out, the
app crashes once, and rolls back by itself on the next launch. Everything runs for real: `overair serve`
on 127.0.0.1, the `overair` CLI, and the example app using `overair.client`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
KEY = re.compile(r"oa_[A-Za-z0-9_-]{43}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m" if sys.stdout.isatty() else f"\n== {title}", flush=True)


class Demo:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = {**os.environ, "OVERAIR_CONFIG": str(work / "cli.json"), "COLUMNS": "170", "NO_COLOR": "1"}
        self.failures: list[str] = []

    def expect(self, text: str, output: str, why: str) -> None:
        if text not in output:
            self.failures.append(f"{why}: expected {text!r} in the output")

    def overair(self, *args: str) -> str:
        print("$ overair " + " ".join(a if " " not in a else repr(a) for a in args), flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "overair.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        print((done.stdout + done.stderr).rstrip(), flush=True)
        if done.returncode != 0:
            raise SystemExit(f"demo failed: overair {' '.join(args)} exited {done.returncode}")
        return done.stdout

    def launch_app(self, key: str, answer: str = "") -> tuple[int, str]:
        print("$ python welcome_app.py  (launch)", flush=True)
        done = subprocess.run(
            [
                sys.executable,
                str(HERE / "welcome_app.py"),
                "--server",
                self.url,
                "--deployment-key",
                key,
                "--data-dir",
                str(self.work / "device"),
            ],
            input=answer,
            capture_output=True,
            text=True,
            timeout=120,
            env=self.env,
        )
        output = done.stdout + "".join(
            line + "\n" for line in done.stderr.splitlines() if line.startswith("[overair]")
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            output += f"\n*** the app crashed: {last}\n"
        print(output.rstrip(), flush=True)
        return done.returncode, output

    def run(self) -> int:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        step("Start the server (what `make run` does)")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "overair.main",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(self.work / "server"),
            ],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            admin = self.wait_for(server)
            self.overair("login", "--server", self.url, "--access-key", admin)
            self.overair("app", "create", "CoolApp")
            deployments = httpx.get(
                f"{self.url}/api/v1/apps/CoolApp/deployments", headers={"Authorization": f"Bearer {admin}"}
            ).json()
            key = next(d["key"] for d in deployments if d["name"] == "Production")

            step("1. The app is released with a typo on its welcome screen")
            _, out = self.launch_app(key)
            self.expect("Welcom to CoolApp", out, "the embedded bundle shows the typo")

            step("2. Correct the title, then push the update: 1.0.0 build 1, 100%, mandatory")
            push = [
                "release",
                "push-update",
                "--project-name",
                "CoolApp",
                "--target-version",
                "1.0.0",
                "--build-number",
                "1",
                "--rollout-percentage",
                "100",
                "--mandatory",
            ]
            self.overair(
                *push, "--bundle", str(HERE / "bundles" / "fixed"), "--description", "Fix the welcome typo"
            )

            step("3. Restart the app: it offers the update; tap Confirm")
            _, out = self.launch_app(key, answer="\n")
            self.expect("An update is available that must be installed.", out, "the mandatory prompt")
            self.expect("Update is installed.", out, "the information dialog")
            self.expect("Welcome to CoolApp", out, "the fixed text after the reload")

            step("4. Restart again: the fixed bundle starts right away")
            _, out = self.launch_app(key)
            self.expect("bundle: v1", out, "v1 runs at start")

            step("5. A broken update goes out")
            self.overair(*push, "--bundle", str(HERE / "bundles" / "broken"), "--description", "Oops")
            _, out = self.launch_app(key, answer="\n")
            self.expect("the app crashed", out, "the broken bundle crashes the app")

            step("6. Next launch: the app goes back to the last good bundle by itself")
            _, out = self.launch_app(key)
            self.expect("bundle: v1", out, "rolled back to v1")
            self.expect("was never confirmed", out, "the engine says why it went back")
            self.expect("Welcome to CoolApp", out, "the good text again")

            step("7. The server knows: v2 failed and rolled back on this device")
            listing = self.overair("release", "list", "--project-name", "CoolApp")
            self.expect("v2", listing, "the release list")
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        if self.failures:
            print("\nThe demo did not go as the story says:")
            for failure in self.failures:
                print(f"  - {failure}")
            return 1
        print("\nThat is the whole OTA story. Next: docs/getting-started.md")
        return 0

    def wait_for(self, server: subprocess.Popen[str]) -> str:
        assert server.stdout is not None
        key = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                raise SystemExit("demo failed: overair serve stopped")
            print(line.rstrip(), flush=True)
            if match := KEY.search(line):
                key = match.group(0)
            if "Press Ctrl+C to stop" in line:
                break
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        # keep reading the server's log so it never blocks on a full pipe
        import threading

        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()  # type: ignore[union-attr]
        return key


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="overair-demo-"))
    try:
        return Demo(work).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
