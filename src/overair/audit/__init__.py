"""The audit log: who changed what, when, through which key and from where (issue 16).

- :mod:`overair.audit.models`: the append-only ``audit_events`` table;
- :mod:`overair.audit.rules`: the stable action verbs, who acted (the one place a :class:`Principal`
  becomes stored columns) and what changed (the before and after of the changed fields), pure;
- :mod:`overair.audit.log`: :class:`AuditLog`, which services call inside the transaction of the change;
- :mod:`overair.audit.service`: reading events (filters, pages, rights) and the retention prune;
- :mod:`overair.audit.api`: ``GET /api/v1/audit``.

An event is written in the same database transaction as the change it describes, so a change and its
event are never one without the other. Nothing updates or deletes an event except the retention prune.
"""
