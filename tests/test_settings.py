"""Settings: flags over RECONCILER_* variables over the config file over the defaults."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from reconciler import cli, settings
from reconciler.errors import ConfigError
from reconciler.loadtest.policy import Policy as LoadTestPolicy
from reconciler.model.modsig import Signing


def parsed(*argv: str, names: tuple[str, ...] = ("store", "jobs", "adopt", "listen")
           ) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    settings.add_flags(parser, *names)
    return parser.parse_args(list(argv))


def test_flag_beats_variable_beats_file_beats_default(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("store: /from/file\njobs: 3\nlisten: 127.0.0.1:9001\n")
    env = {"RECONCILER_CONFIG": str(config), "RECONCILER_JOBS": "5",
           "RECONCILER_LISTEN": "127.0.0.1:9002"}
    got = settings.resolve(parsed("--listen", "127.0.0.1:9003"), env)
    assert (got.store, got.jobs, got.listen) == (Path("/from/file"), 5, "127.0.0.1:9003")
    assert got.state_dir == settings.Settings().state_dir  # untouched: the default
    assert settings.resolve(parsed(), {}).store == settings.Settings().store


def test_the_webhook_secret_is_a_setting_read_from_the_environment_only(
        tmp_path: Path) -> None:
    """RECONCILER_WEBHOOK_SECRET is read here, with every other variable, and nowhere
    else; it is never printed with the settings and never taken from the config file
    (readable by more than the daemon)."""
    got = settings.resolve(parsed(), {"RECONCILER_WEBHOOK_SECRET": "s3cret-value"})
    assert got.webhook_secret == "s3cret-value"
    assert "s3cret-value" not in repr(got)
    assert settings.resolve(parsed(), {}).webhook_secret == ""
    config = tmp_path / "config.yaml"
    config.write_text("webhook_secret: in-a-file\n")
    with pytest.raises(ConfigError, match="unknown setting 'webhook_secret'"):
        settings.resolve(parsed("--config", str(config)), {})


def test_config_flag_wins_over_the_variable_naming_another_file(tmp_path: Path) -> None:
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("jobs: 1\n")
    two.write_text("jobs: 2\n")
    got = settings.resolve(parsed("--config", str(two)), {"RECONCILER_CONFIG": str(one)})
    assert got.jobs == 2


def test_a_switch_flag_and_boolean_spellings(tmp_path: Path) -> None:
    assert settings.resolve(parsed("--adopt"), {}).adopt is True
    assert settings.resolve(parsed(), {"RECONCILER_ADOPT": "yes"}).adopt is True
    assert settings.resolve(parsed(), {"RECONCILER_ADOPT": "off"}).adopt is False


@pytest.mark.parametrize(("text", "message"), [
    ("jobs: many\n", ":1: jobs must be a whole number such as 4, got 'many'"),
    ("store: /s\nhostnmae: web-1\n", ":2: unknown setting 'hostnmae'; did you mean 'hostname'?"),
    ("nonsense: 1\n", ":1: unknown setting 'nonsense'; see `reconciler run --help`"),
    ("- a list\n", ":1: expected a mapping of settings"),
    ("jobs: [1\n", ":2: not valid YAML: expected ',' or ']'"),
    ("settle: soon\n", ":1: settle must be a number of seconds such as 30 or 2.5, got 'soon'"),
])
def test_a_bad_config_file_is_one_sentence_naming_the_file(
    tmp_path: Path, text: str, message: str,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        settings.resolve(parsed("--config", str(config)), {})
    assert str(caught.value).startswith(f"{config}{message}")


def test_a_named_config_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        settings.resolve(parsed(), {"RECONCILER_CONFIG": str(tmp_path / "nope.yaml")})


def test_a_bad_variable_and_a_bad_listen_address_name_their_origin() -> None:
    with pytest.raises(ConfigError,
                       match=r"^RECONCILER_JOBS: jobs must be a whole number such as 4, got 'x'$"):
        settings.resolve(parsed(), {"RECONCILER_JOBS": "x"})
    with pytest.raises(ConfigError, match="must be HOST:PORT"):
        settings.resolve(parsed("--listen", "nowhere"), {})


def test_retention_is_a_duration_from_flag_variable_or_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("retention: 36h\n")
    env = {"RECONCILER_CONFIG": str(config)}
    assert settings.Settings().retention == 7 * 86400
    assert settings.resolve(parsed(names=("retention",)), env).retention == 36 * 3600
    assert settings.resolve(parsed(names=("retention",)),
                            {**env, "RECONCILER_RETENTION": "90m"}).retention == 5400
    assert settings.resolve(parsed("--retention", "3600", names=("retention",)),
                            env).retention == 3600
    with pytest.raises(ConfigError, match="--retention: retention must be a duration such as"):
        settings.resolve(parsed("--retention", "a week", names=("retention",)), {})
    with pytest.raises(ConfigError):
        settings.resolve(parsed("--retention=-1d", names=("retention",)), {})


def test_load_test_is_best_effort_unless_the_file_or_a_variable_says_otherwise(
    tmp_path: Path,
) -> None:
    assert settings.resolve(parsed(), {}).load_test is LoadTestPolicy.BEST_EFFORT
    config = tmp_path / "config.yaml"
    config.write_text("load_test: required\n")
    assert settings.resolve(parsed(), {"RECONCILER_CONFIG": str(config)}).load_test is (
        LoadTestPolicy.REQUIRED)
    assert settings.resolve(parsed(), {"RECONCILER_LOAD_TEST": "off"}).load_test is (
        LoadTestPolicy.OFF)
    with pytest.raises(ConfigError, match="load_test must be a load-test policy "
                       r"\(required, best-effort or off\), got 'sometimes'"):
        settings.resolve(parsed(), {"RECONCILER_LOAD_TEST": "sometimes"})


@pytest.mark.parametrize("command", cli.COMMANDS)
def test_every_command_parses_its_own_flags_and_the_full_parser_builds(command: str) -> None:
    """A setting registered twice on one command (argparse refuses the second) would
    stop that command before it does anything; ``run`` once did for ``--upstreams``."""
    cli.parser(command)
    cli.parser()


def test_the_trust_settings_come_from_the_config_file(tmp_path: Path) -> None:
    """The module-signing keyring is named pairs of absolute paths; kernel_url_allow CIDR
    ranges; trusted_keys pinned Ed25519 keys. Each mistake is one sentence naming it."""
    config = tmp_path / "c.yaml"
    public = "ed25519:" + "A" * 43 + "="
    config.write_text(
        "signing_keys:\n  mok: {key: /etc/mok/MOK.priv, certificate: /etc/mok/MOK.der}\n"
        "kernel_url_allow: [10.0.0.0/8, 'fd00::/8']\n"
        f"trusted_keys: ['{public}']\nindex_expiry: 2d\n")
    got = settings.resolve(parsed("--config", str(config)), {})
    assert got.keyring == {"mok": Signing("/etc/mok/MOK.priv", "/etc/mok/MOK.der", "mok")}
    assert [str(n) for n in got.kernel_url_allow] == ["10.0.0.0/8", "fd00::/8"]
    assert got.trusted_keys == (public,)
    assert got.index_expiry == 2 * 86400
    for text, said in [
        ("signing_keys: {mok: {key: MOK.priv, certificate: /c}}", "must be absolute paths"),
        ("signing_keys: {'a/b': {key: /k, certificate: /c}}", "a key name is letters"),
        ("kernel_url_allow: [nowhere]", "does not appear to be an IPv4 or IPv6 network"),
        ("trusted_keys: [rsa:abc]", "expected ed25519:<base64 of 32 bytes>"),
    ]:
        config.write_text(text + "\n")
        with pytest.raises(ConfigError, match=re.escape(said)):
            settings.resolve(parsed("--config", str(config)), {})


@pytest.mark.parametrize("name", ["upstreams", "alerts"])
def test_a_url_with_credentials_is_refused_without_showing_them(tmp_path: Path, name: str) -> None:
    """Issue 20.4: ``http://user:pass@host`` would put the password in plans, logs and
    status; it is refused, and the refusal names the entry with the password hidden."""
    config = tmp_path / "config.yaml"
    config.write_text(f"{name}:\n  - http://fleet:s3cret@127.0.0.1:8765/drivers\n")
    with pytest.raises(ConfigError, match="must hold no user or password") as caught:
        settings.resolve(parsed(), {"RECONCILER_CONFIG": str(config)})
    assert "s3cret" not in str(caught.value)
    assert "http://***@127.0.0.1:8765/drivers" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        settings.resolve(parsed(), {f"RECONCILER_{name.upper()}": "https://tok@10.0.0.1/x"})
    assert "tok" not in str(caught.value)


def test_an_upstreams_deadline_is_read_and_bounded(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("upstreams:\n  - {url: 'http://127.0.0.1:1', timeout: 5, deadline: 60}\n")
    got = settings.resolve(parsed(), {"RECONCILER_CONFIG": str(config)})
    assert (got.upstreams[0].timeout, got.upstreams[0].deadline) == (5.0, 60.0)
    config.write_text("upstreams:\n  - {url: 'http://127.0.0.1:1', timeout: 5, deadline: 2}\n")
    with pytest.raises(ConfigError, match=r"deadline must be seconds in \[timeout, 86400\]"):
        settings.resolve(parsed(), {"RECONCILER_CONFIG": str(config)})


def test_an_upstream_can_require_tested_artifacts(tmp_path: Path) -> None:
    """require_tested: true makes an upstream give only what its index says passed a load
    test; anything but a boolean is refused with its place."""
    config = tmp_path / "c.yaml"
    config.write_text("upstreams:\n  - {url: 'http://127.0.0.1:8000', kind: reconciler,"
                      " require_tested: true}\n  - http://127.0.0.1:8001\n")
    got = settings.resolve(parsed("--config", str(config)), {})
    assert [u.require_tested for u in got.upstreams] == [True, False]
    config.write_text("upstreams:\n  - {url: 'http://127.0.0.1:8000', require_tested: yes"
                      "please}\n")
    with pytest.raises(ConfigError, match="require_tested must be true or false"):
        settings.resolve(parsed("--config", str(config)), {})


def test_the_docker_socket_is_a_setting_left_unset_for_the_root_to_default(
        tmp_path: Path) -> None:
    """Flag over variable over file; unset, it stays None and the composition root takes
    the socket DOCKER_HOST names (tests/plan/test_planner.py), never read mid-plan."""
    config = tmp_path / "config.yaml"
    config.write_text("docker_socket: /from/file.sock\n")
    names = ("docker_socket",)
    env = {"RECONCILER_CONFIG": str(config)}
    assert settings.resolve(parsed(names=names), env).docker_socket == "/from/file.sock"
    env["RECONCILER_DOCKER_SOCKET"] = "/from/env.sock"
    assert settings.resolve(parsed(names=names), env).docker_socket == "/from/env.sock"
    flagged = parsed("--docker-socket", "/from/flag.sock", names=names)
    assert settings.resolve(flagged, env).docker_socket == "/from/flag.sock"
    unset = settings.resolve(parsed(names=names), {"DOCKER_HOST": "unix:///x.sock"})
    assert unset.docker_socket is None
