"""Webhooks (issue 17): each app's hooks, events emitted to them, signed deliveries retried for a day.

- :mod:`overair.webhooks.rules`: event names, URL checks, signatures, the retry schedule, body formats;
- :mod:`overair.webhooks.service`: ``Webhooks`` — manage hooks, ``emit`` events, deliver them as jobs;
- :mod:`overair.webhooks.transport`: the one HTTP POST a try makes (deadline, no redirects);
- :mod:`overair.webhooks.api`: the management routes.

Another module tells of an event with ``webhooks.emit(app_name, "rollout.paused", {...})``; it never
knows who receives it or how.
"""

from overair.webhooks.rules import EVENTS
from overair.webhooks.service import Webhooks

__all__ = ["EVENTS", "Webhooks"]
