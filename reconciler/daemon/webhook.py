"""The webhook endpoint: a forge's push notification, authenticated, means "fetch now".

A ``Site`` of the HTTP server's core (``reconciler.httpd``), on its own address (a different
audience than the driver repository's): on the driver server's loop when the daemon has
one, else on a loop of its own. ``POST`` any path, the body at most ``MAX_BODY`` bytes, read
by the loop within the header timeout; accepted when the body's HMAC-SHA256 with the shared secret
matches ``X-Hub-Signature-256: sha256=<hex>`` (GitHub, Gitea, Forgejo) or
``X-Gitea-Signature: <hex>``, or when ``X-Gitlab-Token`` equals the secret (GitLab's
scheme). Comparisons are constant-time. The payload itself is never trusted: the pass
fetches and reads the repository as always.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Mapping

from reconciler import logs
from reconciler.daemon.wakeup import Wakeup
from reconciler.errors import ServerError
from reconciler.httpd.config import ServerConfig
from reconciler.httpd.heads import RequestHead
from reconciler.httpd.loop import Loop
from reconciler.httpd.messages import Admission, Request, Response, content_length, text
from reconciler.httpd.server import DriverServer
from reconciler.model import hmacsig

log = logs.get(__name__)
MAX_BODY = 1 << 20
_SIGNATURES = ("X-Hub-Signature-256", "X-Gitea-Signature", "X-Gitlab-Token")
_EVENTS = ("X-GitHub-Event", "X-Gitea-Event", "X-Gitlab-Event")
# A loop of its own (no driver server): webhooks are rare and answered at once.
_OWN_LOOP = ServerConfig(workers=2, max_connections=256)


def authentic(secret: bytes, body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether the request carries proof of the shared secret, in any forge's scheme."""
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    if hmacsig.matches(secret, body, lowered.get("x-hub-signature-256")):
        return True
    if hmacsig.matches_hex(secret, body, lowered.get("x-gitea-signature", "")):
        return True
    token = lowered.get("x-gitlab-token", "")
    return bool(token) and hmac.compare_digest(token.encode(), secret)


class WebhookSite:
    """The webhook as a ``messages.Site`` (module docstring)."""

    def __init__(self, secret: bytes, wakeup: Wakeup) -> None:
        self.secret = secret
        self.wakeup = wakeup

    def admit(self, head: RequestHead) -> Admission:
        if head.method != "POST":
            return Admission(refusal=text(405, "method not allowed\n", close=True,
                                          fields=(("Allow", "POST"),)))
        length = content_length(head, MAX_BODY)
        if isinstance(length, Response):
            return Admission(refusal=length)
        return Admission(body_length=length)

    def respond(self, request: Request) -> Response:
        fields = request.head.headers
        proof = {name: value for name in _SIGNATURES if (value := fields.get(name))}
        if not authentic(self.secret, request.body, proof):
            log.warning("webhook.rejected", client=request.client,
                        path=request.head.target[:200])
            return text(401, "bad or missing signature\n")
        event = next((value for name in _EVENTS if (value := fields.get(name))), "push")
        log.info("webhook.accepted", client=request.client, kind=event[:64])
        self.wakeup.wake("webhook")
        return text(202, "reconciling\n")


class WebhookServer:
    """The webhook on ``address``: on ``server``'s loop if given, else on its own."""

    def __init__(self, address: tuple[str, int], secret: bytes, wakeup: Wakeup, *,
                 server: DriverServer | None = None) -> None:
        if not secret:
            raise ServerError("the webhook needs a shared secret (--webhook-secret-file)")
        self._server = server
        self._loop = Loop(_OWN_LOOP) if server is None else None
        site = WebhookSite(secret, wakeup)
        try:
            if server is not None:
                self._socket = server.listen(address, site)
            else:
                assert self._loop is not None
                self._socket = self._loop.listen(address, site)
        except OSError as exc:
            if self._loop is not None:
                self._loop.stop(0)
            raise ServerError(f"cannot listen for webhooks on {address[0]}:{address[1]}: "
                              f"{exc.strerror}") from exc
        host, port = self._socket.getsockname()[:2]
        self.address = str(host), int(port)  # the bound one (port 0 picks a free port)
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookServer:
        if self._loop is not None:
            self._thread = threading.Thread(target=self._loop.run, name="httpd-webhook",
                                            daemon=True)
            self._thread.start()
        log.info("webhook.listening", address=f"{self.address[0]}:{self.address[1]}")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.unlisten(self._socket)
            return
        assert self._loop is not None
        self._loop.stop(grace=1.0)
        if self._thread is not None:
            self._thread.join()

