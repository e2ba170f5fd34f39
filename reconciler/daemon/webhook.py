"""The webhook endpoint: a forge's push notification, authenticated, means "fetch now".

A small ``http.server`` of its own (never the driver server: a different audience and
port). ``POST`` any path; accepted when the body's HMAC-SHA256 with the shared secret
matches ``X-Hub-Signature-256: sha256=<hex>`` (GitHub, Gitea, Forgejo) or
``X-Gitea-Signature: <hex>``, or when ``X-Gitlab-Token`` equals the secret (GitLab's
scheme). Comparisons are constant-time. The payload itself is never trusted: the pass
fetches and reads the repository as always.
"""

from __future__ import annotations

import hmac
import http.server
import threading
from collections.abc import Mapping

from reconciler import logs
from reconciler.daemon.wakeup import Wakeup
from reconciler.errors import ServerError
from reconciler.model import hmacsig

log = logs.get(__name__)
MAX_BODY = 1 << 20


def authentic(secret: bytes, body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether the request carries proof of the shared secret, in any forge's scheme."""
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    if hmacsig.matches(secret, body, lowered.get("x-hub-signature-256")):
        return True
    if hmacsig.matches_hex(secret, body, lowered.get("x-gitea-signature", "")):
        return True
    token = lowered.get("x-gitlab-token", "")
    return bool(token) and hmac.compare_digest(token.encode(), secret)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: WebhookHTTPServer
    timeout = 10
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        return  # one structured event per request instead (below)

    def _answer(self, code: int, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self._answer(411, "Content-Length required")
            return
        if int(length) > MAX_BODY:
            self._answer(413, "payload too large")
            return
        body = self.rfile.read(int(length))
        headers = {k: v for k, v in self.headers.items()}
        if not authentic(self.server.secret, body, headers):
            log.warning("webhook.rejected", client=self.client_address[0], path=self.path)
            self._answer(401, "bad or missing signature")
            return
        event = headers.get("X-GitHub-Event") or headers.get("X-Gitea-Event") \
            or headers.get("X-Gitlab-Event") or "push"
        log.info("webhook.accepted", client=self.client_address[0], kind=event)
        self.server.wakeup.wake("webhook")
        self._answer(202, "reconciling")

    def _not_allowed(self) -> None:
        self.send_response(405)
        self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_DELETE = do_HEAD = _not_allowed  # noqa: N815 - stdlib naming


class WebhookHTTPServer(http.server.HTTPServer):
    def __init__(self, address: tuple[str, int], secret: bytes, wakeup: Wakeup) -> None:
        self.secret = secret
        self.wakeup = wakeup
        super().__init__(address, _Handler)


class WebhookServer:
    def __init__(self, address: tuple[str, int], secret: bytes, wakeup: Wakeup) -> None:
        if not secret:
            raise ServerError("the webhook needs a shared secret (--webhook-secret-file)")
        try:
            self._httpd = WebhookHTTPServer(address, secret, wakeup)
        except OSError as exc:
            raise ServerError(f"cannot listen for webhooks on {address[0]}:{address[1]}: "
                              f"{exc.strerror}") from exc
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="webhook",
                                        daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> WebhookServer:
        self._thread.start()
        log.info("webhook.listening", address=f"{self.address[0]}:{self.address[1]}")
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
