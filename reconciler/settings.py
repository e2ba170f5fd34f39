"""Settings: flags, then ``RECONCILER_*`` variables, then the config file, then defaults.

Every command declares the settings it takes with ``add_flags(parser, ...)`` and reads
them back, merged, with ``resolve(args)``. The config file is YAML with the same names as
the flags in snake_case (``state_dir: /var/lib/falco-reconciler``); its path is
``--config``, ``RECONCILER_CONFIG``, or ``/etc/falco-reconciler/config.yaml`` when present.
"""

from __future__ import annotations

import argparse
import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from reconciler.errors import ConfigError, FleetSettingError
from reconciler.loadtest.policy import Policy as LoadTestPolicy
from reconciler.model import keyring
from reconciler.model import upstreams as fleet
from reconciler.model.modsig import Signing

DEFAULT_CONFIG = Path("/etc/falco-reconciler/config.yaml")
DEFAULT_SOURCE = "https://github.com/falcosecurity/libs/archive/{driverVersion}.tar.gz"
# The flags of both commands that apply (apply, run): where the manifests, the host and the
# store are and how drivers are built and loaded (APPLYING); how Falco is deployed and what
# is kept (DEPLOYING).
APPLYING = ("repo", "ref", "path", "host_root", "store", "state_dir", "listen", "hostname",
            "privileged", "source", "base_image", "jobs", "build_timeout", "insmod_command",
            "rmmod_command")
DEPLOYING = ("adopt", "settle", "ready_timeout", "stop_timeout", "retention")


@dataclass(frozen=True)
class Settings:
    repo: str = "."
    ref: str | None = None
    path: str = ""
    host_root: Path = Path("/")
    store: Path = Path("/var/lib/falco-reconciler/store")
    state_dir: Path = Path("/var/lib/falco-reconciler")
    listen: str = "127.0.0.1:8000"
    source: str = DEFAULT_SOURCE
    base_image: str = "docker.io/library/debian:bookworm"
    jobs: int = 0  # 0: the number of cores
    build_timeout: float = 1800.0
    hostname: str | None = None  # overrides the host's name (tests, build hosts)
    # Another host's facts (its `facts --json`): plan that host, not this machine.
    facts: Path | None = None
    # False only where the engine cannot grant every capability (see container.spec_for).
    privileged: bool = True
    # The engine's unix socket, which Falco's container mounts; None: the root takes the
    # one DOCKER_HOST names (edges.docker.client.socket_path).
    docker_socket: str | None = None
    insmod_command: str = "insmod"  # kmod-preloaded: how the module is inserted
    rmmod_command: str = "rmmod"
    adopt: bool = False
    settle: float = 10.0
    ready_timeout: float = 60.0
    stop_timeout: int = 10
    # Seconds an artifact nothing wants any more stays in the store (plan.retention).
    retention: float = 7 * 86400.0
    # The daemon's own.
    poll_interval: float = 60.0
    debounce: float = 0.2
    backoff_max: float = 300.0
    metrics_listen: str | None = None
    webhook_listen: str | None = None
    webhook_secret_file: Path | None = None
    # RECONCILER_WEBHOOK_SECRET only (never a flag or the config file: those are readable
    # by more than the daemon); used when webhook_secret_file is not set.
    webhook_secret: str = field(default="", repr=False)
    verify_gpg_home: Path | None = None
    verify_ssh_allowed_signers: Path | None = None
    docker_events: bool = True
    # A fleet's (model.upstreams): where drivers are fetched from, whether we build,
    # build requests we take, alerts we send.
    upstreams: tuple[fleet.Upstream, ...] = ()
    build: fleet.BuildPolicy = fleet.BuildPolicy.MISSING
    # Prove each built driver in a VM of its kernel before publishing it (docs/load-test.md).
    load_test: LoadTestPolicy = LoadTestPolicy.BEST_EFFORT
    falco_upstreams: bool = False  # give Falco the upstreams after our server
    accept_build_requests: bool = False
    build_request_secret_file: Path | None = None
    build_request_rate: float = 6.0  # requests per client per minute
    build_request_queue: int = 64  # artifacts waiting to be built, at most
    alerts: tuple[fleet.AlertTarget, ...] = ()
    # Trust (model.keyring): the host's module-signing keys by name, the ranges a
    # kernelUrls download may reach besides the public internet, the index key this host
    # signs with, the index keys it trusts, and how long a signed index stays valid.
    signing_keys: tuple[Signing, ...] = ()
    kernel_url_allow: tuple[keyring.Network, ...] = ()
    kernel_url_max_bytes: int = 512 << 20
    index_signing_key: Path | None = None
    trusted_keys: tuple[str, ...] = ()
    index_expiry: float = 7 * 86400.0
    # The fleet's Prometheus, which rollout gates ask (a host's setting: manifests name no
    # host paths and no credentials).
    prometheus_url: str | None = None
    prometheus_bearer_token_file: Path | None = None
    prometheus_basic_auth_file: Path | None = None  # one line: user:password
    prometheus_ca_file: Path | None = None
    prometheus_timeout: float = 5.0

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    @property
    def keyring(self) -> dict[str, Signing]:
        return {pair.name: pair for pair in self.signing_keys}

    @property
    def build_jobs(self) -> int:
        return self.jobs or os.cpu_count() or 1


_HELP = {
    "repo": "git repository of manifests: a local path or a clone URL (default: .)",
    "ref": "branch, tag or commit to read (default: the remote's default branch / HEAD)",
    "path": "folder of the manifests inside the repository (default: its root)",
    "host_root": "where the host's /proc and /etc are found (default: /)",
    "store": "driver store folder (default: /var/lib/falco-reconciler/store)",
    "state_dir": "state and cache folder (default: /var/lib/falco-reconciler)",
    "listen": "HOST:PORT the driver server binds (default: 127.0.0.1:8000)",
    "source": "driver source: URL template with {driverVersion}, a folder, a tarball, "
    "or deb:<package>[=<version>][/<suite>]",
    "base_image": "image the driver builder starts from (default: debian:bookworm)",
    "jobs": "parallel builds (default: the number of cores)",
    "build_timeout": "seconds one build may take (default: 1800)",
    "hostname": "act as this host name instead of the host's own",
    "facts": "plan with another host's facts: the JSON `reconciler facts --json` printed "
    "there (with --hostname NAME)",
    "privileged": "run Falco --privileged: true (default) or false, only for engines that "
    "cannot grant every capability",
    "docker_socket": "the Docker engine's unix socket, mounted into Falco's container "
    "(default: the socket DOCKER_HOST names, else /var/run/docker.sock)",
    "insmod_command": "kmod-preloaded: command that inserts the module, given its path "
    "(default: insmod)",
    "rmmod_command": "kmod-preloaded: command that removes the module, given its name "
    "(default: rmmod)",
    "adopt": "replace a same-named container we did not create",
    "settle": "seconds a new Falco container must stay up when it has no web server to "
    "ask (default: 10)",
    "ready_timeout": "seconds a new Falco container gets to answer /healthz on its web "
    "server (default: 60)",
    "stop_timeout": "seconds Falco gets to stop before it is killed (default: 10)",
    "retention": "how long an artifact nothing wants any more is kept before it is deleted: "
    "seconds, or a number with s, m, h or d (default: 7d)",
    "poll_interval": "seconds between fetches, jittered by 10%% (default: 60)",
    "debounce": "seconds to gather a burst of triggers into one pass (default: 0.2)",
    "backoff_max": "longest wait between retries of a transient failure (default: 300)",
    "metrics_listen": "serve Prometheus metrics on HOST:PORT (default: off)",
    "webhook_listen": "accept forge push webhooks on HOST:PORT (default: off)",
    "webhook_secret_file": "file holding the webhook's shared secret",
    "verify_gpg_home": "apply only commits signed by a key of this GnuPG home",
    "verify_ssh_allowed_signers": "apply only commits signed by an SSH key of this "
    "allowed_signers file",
    "docker_events": "follow Docker events to see drift at once: true (default) or false",
    "upstreams": "driver repositories to fetch from, in order (comma-separated URLs; the "
    "config file takes per-upstream options)",
    "build": "build what no upstream has: missing (default), never (fetch only), always "
    "(never fetch)",
    "load_test": "load-test each built driver in a VM of its kernel before publishing: "
    "required (publish only passing ones), best-effort (default: never a failing one; an "
    "untestable one is published marked untested) or off",
    "falco_upstreams": "give Falco our server first and the upstreams after it: true or "
    "false (default)",
    "accept_build_requests": "take build requests from other hosts: true or false (default)",
    "build_request_secret_file": "file holding the build requests' shared secret",
    "build_request_rate": "build requests per client per minute (default: 6)",
    "build_request_queue": "artifacts waiting to be built on request, at most (default: 64)",
    "signing_keys": "module-signing keys by name (config file: {name: {key, certificate}})",
    "kernel_url_allow": "CIDR ranges a kernelUrls download may reach although loopback, "
    "link-local, private or metadata (comma-separated; default: none)",
    "kernel_url_max_bytes": "largest kernelUrls download, bytes (default: 512 MiB)",
    "index_signing_key": "Ed25519 key (PEM) this build host signs its index with",
    "trusted_keys": "ed25519:<base64> index keys whose signatures make fetched drivers "
    "publishable (comma-separated)",
    "index_expiry": "how long this host's signed index stays valid: seconds or a number with "
    "s, m, h or d (default: 7d)",
    "alerts": "URLs that get a JSON event when something needs a person (comma-separated; "
    "the config file takes {url, format: generic|slack})",
    "prometheus_url": "the fleet's Prometheus, asked by rollout gates (default: none: waves "
    "follow each other by soak time only)",
    "prometheus_bearer_token_file": "file holding a bearer token for Prometheus",
    "prometheus_basic_auth_file": "file holding user:password for Prometheus",
    "prometheus_ca_file": "CA bundle that Prometheus's certificate must chain to",
    "prometheus_timeout": "seconds a Prometheus query may take (default: 5)",
}
# The fleet's Prometheus, which rollout gates ask: flags of run, plan and rollout status.
PROMETHEUS = ("prometheus_url", "prometheus_bearer_token_file", "prometheus_basic_auth_file",
              "prometheus_ca_file", "prometheus_timeout")
# How a value from a flag, a variable or the config file becomes the setting's type.
_PATHS = {"host_root", "store", "state_dir", "facts", "webhook_secret_file", "verify_gpg_home",
          "verify_ssh_allowed_signers", "build_request_secret_file", "index_signing_key",
          "prometheus_bearer_token_file", "prometheus_basic_auth_file", "prometheus_ca_file"}
_INTS = {"jobs", "stop_timeout", "build_request_queue", "kernel_url_max_bytes"}
_FLOATS = {"build_timeout", "settle", "ready_timeout", "poll_interval", "debounce", "backoff_max",
           "build_request_rate", "prometheus_timeout"}
_BOOLS = {"privileged", "adopt", "docker_events", "falco_upstreams", "accept_build_requests"}
_DURATIONS = {"retention", "index_expiry"}
_CHOICES = {"build": ("missing", "never", "always"),
            "load_test": ("required", "best-effort", "off")}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Booleans whose flag is a switch (--adopt) rather than taking a value (--privileged false).
_SWITCHES = {"adopt"}


def add_flags(parser: argparse.ArgumentParser, *names: str, config: bool = True) -> None:
    """Add the named settings as flags (default None: not given), and ``--config`` unless
    ``config`` is False (a second call on the same parser, or a command whose own
    ``-c/--config`` means something else)."""
    if config:
        parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                            help="config file (default: /etc/falco-reconciler/config.yaml)")
    for name in names:
        if name not in _HELP:
            raise KeyError(name)
        flag = "--" + name.replace("_", "-")
        helped = f"{_HELP[name]} [{'RECONCILER_' + name.upper()}]"
        if name in _SWITCHES:
            parser.add_argument(flag, dest=name, action="store_const", const="true",
                                default=None, help=helped)
        else:
            parser.add_argument(flag, dest=name, default=None, help=helped,
                                metavar=_metavar(name))


def _metavar(name: str) -> str:
    """What a flag takes, as its help shows it: the choices, or the kind of value."""
    if name == "facts":
        return "FILE"
    if name in _CHOICES:
        return "{" + ",".join(_CHOICES[name]) + "}"
    kinds = ((_BOOLS, "{true,false}"), (_DURATIONS, "DURATION"), (_INTS, "N"),
             ({"build_request_rate"}, "RATE"), (_FLOATS, "SECONDS"),
             ({"listen", "metrics_listen", "webhook_listen"}, "HOST:PORT"),
             ({n for n in _PATHS if n.endswith(("_file", "_signers"))}, "FILE"),
             (_PATHS, "DIR"))
    return next((shown for names, shown in kinds if name in names), name.upper())


def _coerce(name: str, value: Any, origin: str) -> Any:
    """Flags, variables and the config file all give text (or YAML scalars): type them."""
    parse = _PARSERS.get(name)
    if parse is None:
        return str(value)
    try:
        return parse(value, origin)
    except FleetSettingError as exc:
        raise ConfigError(str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: {name} must be {_kind(name)}, got {value!r}") from exc


def _kind(name: str) -> str:
    """What a setting's value must be, in words (for errors)."""
    if name in _KINDS:
        return _KINDS[name]
    if name in _INTS:
        return "a whole number such as 4"
    if name in _FLOATS:
        return "a number of seconds such as 30 or 2.5"
    if name in _BOOLS:
        return "true or false"
    return "text"


def duration(value: Any) -> float:
    """``7d``, ``36h``, ``90m``, ``45s`` or plain seconds, as seconds (never negative)."""
    if isinstance(value, bool):
        raise ValueError(value)
    text = str(value).strip().lower()
    scale = _UNITS.get(text[-1:], 0)
    seconds = float(text[:-1] if scale else text) * (scale or 1)
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(value)
    return seconds


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


# Secrets: read from the environment only (systemd's EnvironmentFile, mode 0600).
_ENVIRONMENT_ONLY = frozenset({"webhook_secret"})


def _config_file(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    given = getattr(args, "config", None) or env.get("RECONCILER_CONFIG")
    path = Path(given) if given else DEFAULT_CONFIG
    if not path.exists():
        if given:
            raise ConfigError(f"config file {path} does not exist")
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    data, lines = _settings_of(text, path)
    known = sorted({f.name for f in fields(Settings)} - _ENVIRONMENT_ONLY)
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = (f"did you mean {close[0]!r}?" if close
                    else "see `reconciler run --help` for the settings")
            raise ConfigError(f"{path}:{lines[key]}: unknown setting {key!r}; {hint}")
    return {k: _coerce(k, v, f"{path}:{lines[k]}") for k, v in data.items()}


def _settings_of(text: str, path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The config file's settings and the line each is on, or a located ConfigError."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{line}: not valid YAML: {problem}") from exc
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}:1: expected a mapping of settings (name: value), got "
                          f"{type(data).__name__}")
    lines = {str(k.value): k.start_mark.line + 1 for k, _v in node.value
             if isinstance(k, yaml.ScalarNode)}
    return {str(k): v for k, v in data.items()}, lines


def resolve(args: argparse.Namespace, env: dict[str, str] | None = None) -> Settings:
    """Merge flags over RECONCILER_* variables over the config file over the defaults."""
    env = dict(os.environ) if env is None else env
    merged: dict[str, Any] = _config_file(args, env)
    for f in fields(Settings):
        value = env.get("RECONCILER_" + f.name.upper())
        if value:
            merged[f.name] = _coerce(f.name, value, "RECONCILER_" + f.name.upper())
    for f in fields(Settings):
        value = getattr(args, f.name, None)
        if value is not None:
            merged[f.name] = _coerce(f.name, value, "--" + f.name.replace("_", "-"))
    settings = replace(Settings(), **merged)
    for listen in (settings.listen, settings.metrics_listen, settings.webhook_listen):
        if listen is not None:
            parse_listen(listen)
    return settings


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"listen address {text!r} must be HOST:PORT, e.g. 127.0.0.1:8000")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - only when the user says ":PORT"


# How each typed setting's text becomes its value (a setting not named here is text).
_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    **{name: lambda v, _o: Path(str(v)) for name in _PATHS},
    **{name: lambda v, _o: int(v) for name in _INTS},
    **{name: lambda v, _o: float(v) for name in _FLOATS},
    **{name: lambda v, _o: _boolean(v) for name in _BOOLS},
    **{name: lambda v, _o: duration(v) for name in _DURATIONS},
    # The fleet's, with parsers of their own (model.upstreams).
    "upstreams": fleet.parse_upstreams,
    "alerts": fleet.parse_alerts,
    "build": lambda v, _o: fleet.BuildPolicy(str(v)),
    "signing_keys": keyring.parse_signing_keys,
    "kernel_url_allow": keyring.parse_networks,
    "trusted_keys": keyring.parse_public_keys,
    "load_test": lambda v, _o: LoadTestPolicy(str(v)),
}
_KINDS = {**{name: "a duration such as 7d, 36h or 3600" for name in _DURATIONS},
          "build": "a build policy (missing, never or always)",
          "load_test": "a load-test policy (required, best-effort or off)"}
