"""The push webhook: each forge's signature, and the endpoint over real HTTP waking the
loop only when signed."""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request

import pytest

from reconciler.daemon.wakeup import Wakeup
from reconciler.daemon.webhook import WebhookServer, authentic


def test_webhook_signatures_of_each_forge() -> None:
    secret, body = b"s3cret", b'{"ref": "refs/heads/main"}'
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert authentic(secret, body, {"X-Hub-Signature-256": f"sha256={digest}"})
    assert authentic(secret, body, {"X-Gitea-Signature": digest})
    assert authentic(secret, body, {"X-Gitlab-Token": "s3cret"})
    assert not authentic(secret, body, {"X-Hub-Signature-256": f"sha256={'0' * 64}"})
    assert not authentic(secret, body + b" ", {"X-Hub-Signature-256": f"sha256={digest}"})
    assert not authentic(secret, body, {"X-Gitlab-Token": "guess"})
    assert not authentic(secret, body, {})


def test_webhook_endpoint_wakes_the_loop_only_when_signed() -> None:
    wakeup = Wakeup(debounce=0.01)
    server = WebhookServer(("127.0.0.1", 0), b"k", wakeup).start()
    url = f"http://127.0.0.1:{server.address[1]}/hook"
    body = b"{}"
    try:
        bad = urllib.request.Request(url, body, {"X-Hub-Signature-256": "sha256=00"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=5)
        assert refused.value.code == 401
        refused.value.close()
        assert wakeup.wait(0.1) == set()
        sig = hmac.new(b"k", body, hashlib.sha256).hexdigest()
        good = urllib.request.Request(url, body, {"X-Hub-Signature-256": f"sha256={sig}",
                                                  "X-GitHub-Event": "push"})
        with urllib.request.urlopen(good, timeout=5) as answer:
            assert answer.status == 202
        assert wakeup.wait(1) == {"webhook"}
        with pytest.raises(urllib.error.HTTPError) as get:
            urllib.request.urlopen(url, timeout=5)
        assert get.value.code == 405
        get.value.close()
    finally:
        server.stop()
