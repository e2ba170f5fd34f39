"""The exception tree of falco-reconciler.

Every error we raise on purpose derives from ``ReconcilerError``; the CLI catches only
that base and prints its one-sentence message. Anything else is a bug and keeps its
traceback. Errors from docker, git and the OS are translated at the adapter that met them
(``raise StoreError(...) from exc``).

    ReconcilerError
    ├── ConfigError              bad flags, config file or environment
    │   └── StalePlan            a saved plan no longer describes what applying would do
    ├── ManifestError            manifests that do not validate (carries every Problem)
    ├── SignatureError           a commit is not signed by a trusted key
    ├── FactsError               the host's facts cannot be read
    ├── UnknownDriverVersion     a Falco version with no known driver version
    ├── SourceError              the git repository cannot be read or the ref resolved   (t)
    ├── StoreError               the driver store cannot be read or written
    │   └── StoreBusy            out of descriptors or memory for now: "later", not "absent"
    ├── DockerError              the engine refused or failed a call                    (t)
    │   ├── DockerUnavailable    no engine answers at DOCKER_HOST                       (t)
    │   └── Cancelled            told to stop (interrupt) before or while a container ran
    ├── KeyUnusable              a host key or certificate cannot be read or used
    ├── BuildError               a driver build failed (names the artifact and the step)
    │   └── BuildTimeout                                                                (t)
    ├── ModuleError              inserting or removing the kernel module failed
    ├── LoadTestError            a load test could not run (not: a driver that failed it)
    │   └── VmError              QEMU is missing, refused its arguments or did not finish
    ├── DeployError              Falco could not be (re)started
    │   ├── DriverNotServed      its driver is not served at the URL it will use        (t)
    │   └── FalcoStartError      the new container did not stay up; the old one is back
    ├── UpstreamError            an upstream cannot be reached, or answers wrong         (t)
    │   └── ArtifactRejected     a fetched artifact does not verify; it is discarded
    ├── PrometheusError          the fleet's Prometheus cannot be asked, or answers wrong (t)
    ├── HttpError                an HTTP exchange failed: no connection, a timeout or   (t)
    │                            the deadline, TLS, an answer that is not HTTP, a body
    │                            too big, JSON malformed or nested too deep
    └── ServerError              the driver server cannot bind or serve
        └── HeadError            a request head refused (the server answers its status)

Below, outside that tree, signals that never leave the layer that raises them: their
caller turns each into one of the errors above (or into a located ``Problem``).

    ValueError                   input that does not parse, raised by pure code
    ├── JsonError                JSON from outside: malformed or nested too deep
    ├── FleetSettingError        an upstream or alert entry of the settings
    ├── InvalidIndex             an index.json that is not a reconciler's
    ├── InvalidSignedIndex       a signed index that does not parse, or no trusted key signed
    ├── BodyError                a body that is not a build request at all
    ├── InvalidSignature         a module signature or certificate that cannot be read
    ├── InvalidDriver            a file that is not the driver it claims to be
    └── KeyedError               a manifest validator's problem with one mapping entry
    Exception
    ├── CertificateUnreadable    the signing certificate file cannot be read or parsed
    ├── UpstreamDown             this upstream answers no more in this pass
    ├── StepFailed               a build step could not do its job
    ├── UnusualYamlNode          a YAML node the fast reader leaves to PyYAML
    └── YamlRefused              a YAML document too deep, or a scalar its tag cannot read

``transient`` (t) tells the daemon whether a retry later may succeed; a failure that is
not transient waits for a new revision or a drift instead of being retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ReconcilerError(Exception):
    """Base of every error falco-reconciler raises on purpose."""

    transient: bool = False


class ConfigError(ReconcilerError):
    """Flags, the config file or RECONCILER_* variables are wrong."""


@dataclass(frozen=True, order=True)
class Problem:
    """One located manifest problem: ``file:line: message``."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class StalePlan(ConfigError):
    """The saved plan no longer describes what applying would do."""


class SignatureError(ReconcilerError):
    """The commit is not signed, or not by a configured key; it is not applied."""


class KeyUnusable(ReconcilerError):
    """A host key (module signing, index signing) or certificate cannot be read or used;
    the message never holds the key's bytes."""


class ManifestError(ReconcilerError):
    """The manifests at a revision do not validate; ``problems`` holds every one."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(problems))
        count = len(self.problems)
        first = str(self.problems[0]) if self.problems else "no detail"
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(f"invalid manifests: {first}{more}")


class FactsError(ReconcilerError):
    """The host's facts (kernel, os-release, architecture) cannot be read."""


class UnknownDriverVersion(ReconcilerError):
    """A Falco version whose driver version we do not know and no override was given."""


class SourceError(ReconcilerError):
    """The manifest repository cannot be cloned, fetched or read, or the ref is unknown."""

    transient = True


class StoreError(ReconcilerError):
    """The driver store cannot be read or written."""


class StoreBusy(StoreError):
    """The process is out of descriptors or memory for now: the store's answer is "later",
    never "absent" (a server says 503, not 404, and lists nothing rather than less)."""


class DockerError(ReconcilerError):
    """The Docker engine refused or failed a call."""

    transient = True


class DockerUnavailable(DockerError):
    """No Docker engine answers at DOCKER_HOST."""


class Cancelled(DockerError):
    """The engine was told to stop (interrupt) before or while a container ran."""

    transient = False


class BuildError(ReconcilerError):
    """A driver build failed; the message names the artifact and the step."""

    def __init__(
        self, message: str, *, artifact: str = "", step: str = "", log_path: str | None = None,
        tail: str = "",
    ) -> None:
        self.artifact = artifact
        self.step = step
        self.log_path = log_path
        self.tail = tail
        super().__init__(message)


class BuildTimeout(BuildError):
    """A driver build ran past its timeout."""

    transient = True


class ModuleError(ReconcilerError):
    """Inserting or removing the kernel module failed."""


class LoadTestError(ReconcilerError):
    """A load test could not be run: no kernel image, no guest userspace, no QEMU. A
    driver that the kernel refuses is not this: that is a failed ``LoadTestResult``."""


class VmError(LoadTestError):
    """QEMU is missing, refused to start, or the VM did not finish in time."""


class DeployError(ReconcilerError):
    """Falco could not be (re)started; ``restored`` when the previous container was put
    back (a rollback: alerts tell it from a plain failure by this, not by the text)."""

    def __init__(self, message: str, *, restored: bool = False) -> None:
        self.restored = restored
        super().__init__(message)


class DriverNotServed(DeployError):
    """The driver the container would load is not served at the URL it will use."""

    transient = True


class FalcoStartError(DeployError):
    """The new Falco container did not stay up; the previous one was put back."""


class UpstreamError(ReconcilerError):
    """An upstream driver repository cannot be reached, times out or answers wrong."""

    transient = True


class ArtifactRejected(UpstreamError):
    """What an upstream sent is not the artifact asked for (checksum, size, vermagic,
    identity); it was discarded and never published."""

    transient = False


class PrometheusError(ReconcilerError):
    """The fleet's Prometheus did not answer a query, or answered something unreadable:
    a rollout gate reads closed."""

    transient = True


class ServerError(ReconcilerError):
    """The driver server cannot bind or serve."""


class HeadError(ServerError):
    """A request head that cannot be answered as asked: the server replies ``status``
    with ``reason`` and closes (it never leaves the server)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class HttpError(ReconcilerError):
    """An HTTP exchange failed: no connection, a timeout or its deadline, TLS, an answer
    that is not HTTP, a body too big, or JSON malformed or nested too deep. The message
    names the request (its URL without credentials) and why."""

    transient = True


# -- signals that never leave the layer that raises them -------------------------------


class JsonError(ValueError):
    """A JSON document from outside that is malformed or nested too deep."""


class FleetSettingError(ValueError):
    """An upstream or alert entry that does not parse; the message names where it is."""


class InvalidIndex(ValueError):
    """An ``index.json`` that is not a reconciler's."""


class InvalidSignedIndex(ValueError):
    """A document that is not a signed index, or one no trusted key signed; ``str`` says why."""


class BodyError(ValueError):
    """The body is not a build request at all (the whole request is refused: 400)."""


class InvalidSignature(ValueError):
    """The module's appended signature, or a certificate, cannot be read."""


class InvalidDriver(ValueError):
    """The file is not the driver it claims to be."""


class KeyedError(ValueError):
    """A validator's problem with one entry of a mapping: ``key`` extends the error's
    location (pydantic places an after-validator's error at the mapping itself, and takes
    only a ``ValueError`` from a validator)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class CertificateUnreadable(Exception):
    """The certificate file cannot be read or parsed; ``str`` is one sentence."""


class UpstreamDown(Exception):
    """This upstream answers no more in this pass (the message says why)."""


class StepFailed(Exception):
    """A build step could not do its job; ``reason`` is one sentence for the user."""

    def __init__(self, reason: str, *, output: str = "", timed_out: bool = False) -> None:
        self.reason = reason
        self.output = output
        self.timed_out = timed_out
        super().__init__(reason)


class UnusualYamlNode(Exception):
    """A node the fast YAML reader leaves to PyYAML's SafeConstructor."""


class YamlRefused(Exception):
    """A document too deep, or with a scalar its tag cannot read: it is not constructed.
    ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
