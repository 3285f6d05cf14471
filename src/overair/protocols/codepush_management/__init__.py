"""The CodePush management API, so the CodePush CLIs and management SDKs steer releases on overair.

Two dialects (``code-push-server``'s and App Center's) share one set of operations over
:class:`ReleaseService`, :class:`AccessKeyService` and the deployment read model:

* ``routes.py``: the two route tables and :class:`CodePushManagement`, the ASGI app that picks the dialect;
* ``calls.py``: one request (:class:`Call`) and what every operation stands on (:class:`Operations`);
* ``handlers.py``: the operations, once: read, call the services, write;
* ``sharing.py``: collaborators, app transfers and App Center's organisations;
* ``encoders.py``: one encoder per dialect (casing, envelopes, where values are read, error answers);
* ``validation.py``: what the reference accepts, and how its values become overair's requests;
* ``errors.py``: the reference's error texts, in one table;
* ``uploads.py``: multipart uploads and App Center's chunked uploads.
"""

from overair.protocols.codepush_management.errors import UNAUTHORIZED
from overair.protocols.codepush_management.routes import ROOTS, CodePushManagement, handles

__all__ = ["ROOTS", "UNAUTHORIZED", "CodePushManagement", "handles"]
