"""model.urls: what plans, logs, status and alerts may show of a URL."""

from __future__ import annotations

from reconciler.model.upstreams import Upstream
from reconciler.model.urls import has_credentials, origin, redacted


def test_redacted_hides_every_userinfo_and_keeps_the_rest() -> None:
    text = "from http://u:p@a.example/x and https://tok@b.example:8443/y?q=1, or c@d"
    assert redacted(text) == ("from http://***@a.example/x and https://***@b.example:8443/y?q=1,"
                              " or c@d")


def test_credentials_and_origins() -> None:
    assert has_credentials("http://u:p@h/")
    assert not has_credentials("http://h/a@b")
    assert origin("HTTP://u@Host:80/x") == origin("http://host:80/y") == ("http", "host:80")


def test_an_upstreams_name_never_holds_its_password() -> None:
    assert Upstream("http://u:s3cret@mirror:8080/drivers").name == "mirror:8080/drivers"
