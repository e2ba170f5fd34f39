"""The driver repository's responder: request head + route + context -> response value.

No sockets: the store is a fake ``Files`` (the responder's own Protocol) over real temp
files, so what the responder decides can be read off the ``Response`` it returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.edges.store.local import OpenFile
from reconciler.httpd import conditions, heads, responder
from reconciler.httpd.messages import Request, Response, text
from reconciler.httpd.responder import Context
from reconciler.model import buildrequests
from tests.httpd.fleet import KMOD

DATA = bytes(range(256)) * 40
SHA = hashlib.sha256(DATA).hexdigest()


@dataclass
class FakeFiles:
    """A store holding one artifact (``KMOD``) and its sidecar; records opened fds."""

    path: Path
    readable_now: bool = True
    opened: list[int] = field(default_factory=list)

    def _open(self, relpath: str, data_sha: str) -> OpenFile:
        fd = os.open(self.path, os.O_RDONLY)
        self.opened.append(fd)
        return OpenFile(fd, relpath, len(DATA), 1_700_000_000.0, data_sha)

    def open_artifact(self, relpath: str) -> OpenFile | None:
        return self._open(relpath, SHA) if relpath == KMOD.relpath else None

    def open_sidecar(self, relpath: str) -> OpenFile | None:
        return self._open(relpath, SHA) if relpath == KMOD.relpath + ".sha256" else None

    def readable(self) -> bool:
        return self.readable_now

    def index_json(self) -> bytes:
        return b'{"artifacts": []}\n'


@dataclass
class FakeIntake:
    calls: list[tuple[str, bytes, str | None]] = field(default_factory=list)

    def handle(self, client: str, body: bytes, signature: str | None) -> Response:
        self.calls.append((client, body, signature))
        return text(202, "{}\n", content_type="application/json")


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FakeFiles]:
    path = tmp_path / "artifact.ko"
    path.write_bytes(DATA)
    fake = FakeFiles(path)
    yield fake
    for fd in fake.opened:  # what the responder kept open belongs to the response
        with contextlib.suppress(OSError):
            os.close(fd)


def _head(method: str, target: str, *fields: str) -> heads.RequestHead:
    data = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{f}\r\n" for f in fields) + "\r\n"
    reader = io.BytesIO(data.encode("latin-1"))
    head = heads.parse(reader.readline(), reader.readline)
    assert head is not None
    return head


def _answer(ctx: Context, method: str, target: str, *fields: str,
            body: bytes = b"") -> Response:
    head = _head(method, target, *fields)
    return responder.respond(Request(head, "192.0.2.7", body),
                             responder.route(target, ctx.host_arch), ctx)


def _field(response: Response, name: str) -> str | None:
    return dict(response.fields).get(name)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_get_of_a_stored_file_gives_its_descriptor_and_validators(files: FakeFiles) -> None:
    answer = _answer(Context(files, "x86_64"), "GET", KMOD.url_path())
    assert answer.status == 200 and answer.file is not None
    assert (answer.offset, answer.count) == (0, len(DATA))
    assert _field(answer, "ETag") == f'"{SHA}"'
    assert _field(answer, "Content-Length") == str(len(DATA))
    assert _field(answer, "Last-Modified") == conditions.http_date(1_700_000_000.0)
    assert not answer.close


def test_head_has_the_get_fields_and_closes_its_file(files: FakeFiles) -> None:
    answer = _answer(Context(files, "x86_64"), "HEAD", KMOD.url_path())
    assert answer.status == 200 and answer.omit_body and answer.file is None
    assert _field(answer, "Content-Length") == str(len(DATA))
    assert not _is_open(files.opened[-1])


def test_a_range_is_sent_from_its_offset(files: FakeFiles) -> None:
    answer = _answer(Context(files, "x86_64"), "GET", KMOD.url_path(), "Range: bytes=100-199")
    assert answer.status == 206 and (answer.offset, answer.count) == (100, 100)
    assert _field(answer, "Content-Range") == f"bytes 100-199/{len(DATA)}"


def test_a_fresh_copy_gives_304_and_no_open_file(files: FakeFiles) -> None:
    answer = _answer(Context(files, "x86_64"), "GET", KMOD.url_path(),
                     f'If-None-Match: "{SHA}"')
    assert answer.status == 304 and answer.file is None
    assert not _is_open(files.opened[-1])


def test_the_sidecar_has_its_own_etag(files: FakeFiles) -> None:
    answer = _answer(Context(files, "x86_64"), "GET", KMOD.url_path() + ".sha256")
    assert answer.status == 200 and _field(answer, "ETag") == f'"{SHA}.sha256"'


def test_absent_hostile_and_other_methods(files: FakeFiles) -> None:
    ctx = Context(files, "x86_64")
    assert _answer(ctx, "GET", "/nothing").status == 404
    bad = _answer(ctx, "GET", "/%zz")
    assert bad.status == 400 and bad.close
    refused = _answer(ctx, "DELETE", KMOD.url_path())
    assert refused.status == 405 and _field(refused, "Allow") == "GET, HEAD"
    # A body the responder does not read ends the connection with the answer.
    assert _answer(ctx, "PUT", "/index.json", "Content-Length: 3").close


def test_index_and_health(files: FakeFiles) -> None:
    ctx = Context(files, "x86_64")
    index = _answer(ctx, "GET", "/index.json")
    assert index.status == 200 and index.body == files.index_json()
    etag = _field(index, "ETag")
    assert _answer(ctx, "GET", "/index.json", f"If-None-Match: {etag}").status == 304
    assert _answer(ctx, "GET", "/healthz").body == b"ok\n"
    files.readable_now = False
    assert _answer(ctx, "GET", "/healthz").status == 503


def test_build_requests_go_to_the_intake_only_on_a_build_host(files: FakeFiles) -> None:
    intake = FakeIntake()
    ctx = Context(files, "x86_64", intake)
    sig = f"{buildrequests.SIGNATURE_HEADER}: sha256=ab"
    answer = _answer(ctx, "POST", buildrequests.PATH, sig, body=b"{}")
    assert answer.status == 202 and intake.calls == [("192.0.2.7", b"{}", "sha256=ab")]
    assert _answer(ctx, "GET", buildrequests.PATH).status == 405
    assert _answer(Context(files, "x86_64"), "POST", buildrequests.PATH).status == 405


def test_admission_reads_only_a_build_requests_body_and_answers_files_on_the_loop(
        files: FakeFiles) -> None:
    ctx = Context(files, "x86_64", FakeIntake())
    assert responder.admit(_head("GET", KMOD.url_path()), ctx).on_loop
    assert responder.admit(_head("GET", "/healthz"), ctx).on_loop
    assert not responder.admit(_head("GET", "/index.json"), ctx).on_loop
    taken = responder.admit(_head("POST", buildrequests.PATH, "Content-Length: 12"), ctx)
    assert taken.body_length == 12 and not taken.on_loop and taken.refusal is None


@pytest.mark.parametrize(("length", "status"), [
    (None, 411), ("²", 400), ("-1", 400), ("1e3", 400), ("9" * 5000, 413),
    (str(buildrequests.MAX_BODY + 1), 413),
])
def test_a_build_requests_length_is_refused_unless_it_is_a_small_decimal(
        files: FakeFiles, length: str | None, status: int) -> None:
    # Built directly: the head parser already refuses a non-ASCII field (test_heads).
    fields = [] if length is None else [("Content-Length", length)]
    head = heads.RequestHead("POST", buildrequests.PATH, "HTTP/1.1", (1, 1),
                             heads.RequestHeaders(fields))
    admission = responder.admit(head, Context(files, "x86_64", FakeIntake()))
    assert admission.refusal is not None
    assert admission.refusal.status == status and admission.refusal.close
