"""Background work shared by every host: a job table with leases, and the worker each process runs.

- :mod:`overair.jobs.models`: the ``jobs`` table;
- :mod:`overair.jobs.rules`: states and the backoff rule;
- :mod:`overair.jobs.queue`: queue once, claim under a lease, complete, fail (``JobQueue``);
- :mod:`overair.jobs.worker`: the thread that runs the jobs a process registered (``Worker``);
- :mod:`overair.jobs.requests`: work asked for on the request path, queued by the worker (``OnDemand``);
- :mod:`overair.jobs.api`: the management route that lists them (``GET /api/v1/jobs``).

The domains queue work and register handlers; they never know which host runs it.
"""

from overair.jobs.queue import ClaimedJob, JobQueue
from overair.jobs.requests import OnDemand
from overair.jobs.rules import JobState, retry_delay
from overair.jobs.worker import Handler, Worker

__all__ = ["ClaimedJob", "Handler", "JobQueue", "JobState", "OnDemand", "Worker", "retry_delay"]
