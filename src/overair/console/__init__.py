"""The web console at ``/console``: sign in with an access key, look at releases, steer rollouts.

Server-rendered pages (Jinja2) over the same services as the management API; see docs/console.md.
"""

from overair.console.web import create_console

__all__ = ["create_console"]
