"""A tiny terminal app with an over-the-air updatable bundle, as a native wrapper would be.

The wrapper (this file) never changes; what it shows comes from its bundle: ``screen.json`` (the text),
``style.json`` (how it looks) and ``logic.py`` (a little logic). The bundle shipped with the app is in
``embedded/``; overair updates it through ``overair.client``.

    python welcome_app.py --server http://127.0.0.1:3000 --deployment-key KEY --data-dir /tmp/welcome

Each run is one launch: start (apply an installed update, or roll back a broken one), render the
welcome screen, confirm it works, then check for an update and show the seeds' dialogs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from overair.client import SyncStatus, TextUI, UpdateEngine

HERE = Path(__file__).resolve().parent


def render(bundle: Path) -> list[str]:
    """Run the bundle's logic on its text and style (a broken bundle raises here)."""
    screen = json.loads((bundle / "screen.json").read_text(encoding="utf-8"))
    style = json.loads((bundle / "style.json").read_text(encoding="utf-8"))
    namespace: dict[str, object] = {}
    exec(
        compile((bundle / "logic.py").read_text(encoding="utf-8"), str(bundle / "logic.py"), "exec"),
        namespace,
    )
    lines = namespace["render"](screen, style)  # type: ignore[operator]
    return [str(line) for line in lines]


def show(lines: list[str], source: str) -> None:
    print(f"--- welcome screen (bundle: {source}) ---")
    for line in lines:
        print(line)
    print("-" * 40)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="overair server URL")
    parser.add_argument("--deployment-key", required=True, help="the Production deployment key")
    parser.add_argument("--data-dir", required=True, type=Path, help="where the app keeps its updates")
    parser.add_argument("--app-version", default="1.0.0")
    parser.add_argument("--build-number", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="[overair] %(message)s")

    engine = UpdateEngine(
        args.server,
        args.deployment_key,
        args.app_version,
        args.build_number,
        embedded_bundle=HERE / "embedded",
        data_dir=args.data_dir,
    )
    with engine:
        bundle = engine.start()
        source = engine.current_label or "embedded"
        show(render(bundle), source)  # a broken bundle crashes here: the next launch rolls back
        engine.notify_app_ready()
        result = engine.sync(TextUI())
        if result.status is SyncStatus.APPLIED and result.reload_path is not None:
            show(render(result.reload_path), engine.current_label or "embedded")
            engine.notify_app_ready()
        elif result.status is SyncStatus.INSTALLED:
            print("An update is installed: it shows at the next start.")
        elif result.status is SyncStatus.FAILED:
            print(f"No update now: {result.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
