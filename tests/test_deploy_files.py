"""The deployment files (Dockerfile, .dockerignore, deploy/) agree with the code they deploy.

No Docker here: the files are parsed and checked against zapgate's own settings and constants.
"""

from __future__ import annotations

import fnmatch
import inspect
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import zapgate
from zapgate.cli import GRACEFUL_SHUTDOWN_SECONDS
from zapgate.config import Settings
from zapgate.engines.wppconnect.engine import CLOSE_TIMEOUT
from zapgate.engines.wppconnect.rpc import BridgeProcess
from zapgate.engines.wppconnect.runtime import BRIDGE_DIR
from zapgate.sessions.service import HANDOVER_FINISH_SECONDS
from zapgate.webhooks.dispatcher import STOP_SECONDS

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "deploy" / "compose.yaml"
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|TOKEN", re.IGNORECASE)
REQUIRED = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]*\}$")
GIVEN = {"ZAPGATE_API_KEY": "k" * 40, "POSTGRES_PASSWORD": "0123abcd"}
"""What an operator puts in deploy/.env, for the checks that need values."""


# the Dockerfile -------------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for word, args in self.instructions if word == keyword]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n(?:\s*#[^\n]*\n)*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            found.append((keyword.upper(), args.strip()))
    return found


def stages() -> dict[str, Stage]:
    parsed: dict[str, Stage] = {}
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            words = args.split()
            name = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else str(len(parsed))
            current = parsed[name] = Stage(name, words[0])
        elif keyword != "ARG" or parsed:
            current.instructions.append((keyword, args))
    return parsed


def inherited(all_stages: dict[str, Stage], name: str) -> list[tuple[str, str]]:
    """The instructions a stage runs with, its parents' first."""
    stage = all_stages[name]
    parent = inherited(all_stages, stage.base) if stage.base in all_stages else []
    return parent + stage.instructions


def last(found: list[tuple[str, str]], keyword: str) -> str | None:
    values = [args for word, args in found if word == keyword]
    return values[-1] if values else None


def env_of(found: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in found:
        if word == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    return env


def runtime_stages() -> list[str]:
    """The images one can build: the default (last) stage and the wppconnect target."""
    names = list(stages())
    return [names[-1], "wppconnect"]


@pytest.mark.parametrize("target", runtime_stages())
def test_each_image_runs_as_a_user_that_is_not_root(target: str) -> None:
    user = last(inherited(stages(), target), "USER")
    assert user is not None, f"{target}: no USER, so it runs as root"
    name = user.split(":")[0]
    assert name not in {"root", "0"}, f"{target} runs as {user}"


@pytest.mark.parametrize("target", runtime_stages())
def test_each_image_checks_liveness_on_health_and_stops_on_sigterm(target: str) -> None:
    found = inherited(stages(), target)
    check = last(found, "HEALTHCHECK")
    assert check is not None
    assert "/health" in check
    assert last(found, "STOPSIGNAL") == "SIGTERM"


@pytest.mark.parametrize("target", runtime_stages())
def test_each_image_listens_on_all_interfaces_on_the_port_it_exposes(target: str) -> None:
    found = inherited(stages(), target)
    env = env_of(found)
    assert env.get("ZAPGATE_HOST") == "0.0.0.0", "the loopback default is unreachable outside"
    assert last(found, "EXPOSE") == env["ZAPGATE_PORT"]
    assert env["ZAPGATE_DATA_DIR"] in (last(found, "VOLUME") or "")
    unknown = {name for name in env if name.startswith("ZAPGATE_")} - setting_names()
    assert not unknown, f"not zapgate settings: {unknown}"


def test_the_image_installs_the_runtime_lock_and_never_the_dev_tools() -> None:
    text = DOCKERFILE.read_text()
    assert "requirements-dev.lock" not in text
    assert "[dev]" not in text
    installs = [run for run in stages()["build"].all("RUN") if "pip install" in run]
    assert any("-r requirements.lock" in run for run in installs)
    assert any("--no-deps ." in run for run in installs)


def test_the_wppconnect_image_puts_the_bridge_where_zapgate_looks_for_it() -> None:
    all_stages = stages()
    npm = " ".join(all_stages["bridge"].all("RUN"))
    assert "npm ci" in npm
    assert "PUPPETEER_SKIP_DOWNLOAD=1" in npm
    image = re.search(r"ARG PYTHON_IMAGE=python:(\d+\.\d+)", DOCKERFILE.read_text())
    assert image is not None
    assert all_stages["base"].base == "${PYTHON_IMAGE}"
    site = f"/opt/zapgate/lib/python{image.group(1)}/site-packages/"
    where = site + BRIDGE_DIR.relative_to(Path(zapgate.__file__).parents[1]).as_posix()
    copies = [args for args in all_stages["wppconnect"].all("COPY") if "--from=bridge" in args]
    assert any(args.rstrip("/").endswith(where) for args in copies), copies
    assert any("doctor" in run for run in all_stages["wppconnect"].all("RUN"))


# .dockerignore --------------------------------------------------------------------------------


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last pattern matching the path or a parent wins."""
    verdict = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            verdict = not keep
    return verdict


def test_the_build_context_holds_what_the_image_copies_and_nothing_local() -> None:
    lines = DOCKERIGNORE.read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    copied = []
    for stage in stages().values():
        for args in stage.all("COPY"):
            if "--from=" not in args:
                copied += args.split()[:-1]
    assert copied
    for source in copied:
        assert not ignored(source.rstrip("/"), patterns), f"{source} is copied but ignored"
    for local in (
        ".git/HEAD",
        ".venv/bin/python",
        ".env",
        "data/zapgate.db",
        "tests/conftest.py",
        "zapgate/engines/wppconnect/bridge/node_modules/ws/package.json",
        "zapgate/__pycache__/app.cpython-311.pyc",
    ):
        assert ignored(local, patterns), f"{local} would go into the build context"


# deploy/compose.yaml --------------------------------------------------------------------------


def setting_names() -> set[str]:
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    return {prefix + name.upper() for name in Settings.model_fields}


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def resolve(value: object) -> str:
    """A value as compose would make it, with deploy/.env holding ``GIVEN``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group("name", "op", "arg")
        if name in GIVEN:
            return GIVEN[name]
        assert op in {"-", ":-"}, f"${{{name}}} has no default"
        return str(arg)

    return INTERPOLATION.sub(one, str(value))


def nodes() -> dict[str, dict[str, str]]:
    """The zapgate nodes (services in cluster mode), with their environment as written."""
    services = compose()["services"]
    return {
        name: {key: str(value) for key, value in service["environment"].items()}
        for name, service in services.items()
        if "ZAPGATE_REDIS_URL" in service.get("environment", {})
    }


def node_env(service: str) -> dict[str, str]:
    """What a node runs with: the image's ZAPGATE_* defaults, then its compose environment."""
    image = env_of(inherited(stages(), runtime_stages()[0]))
    env = {name: value for name, value in image.items() if name.startswith("ZAPGATE_")}
    return env | {name: resolve(value) for name, value in nodes()[service].items()}


def image_of(service: str) -> str:
    return str(compose()["services"][service].get("image", ""))


def test_the_cluster_has_postgres_redis_and_two_zapgate_nodes_with_their_own_names() -> None:
    services = compose()["services"]
    assert image_of("postgres").startswith("postgres:")
    assert image_of("redis").startswith("redis:")
    found = nodes()
    assert len(found) >= 2
    names = [env.get("ZAPGATE_NODE_NAME") for env in found.values()]
    assert None not in names
    assert len(set(names)) == len(names)
    for service in found:
        waits = services[service]["depends_on"]
        for needed in ("postgres", "redis"):
            assert waits[needed]["condition"] == "service_healthy", (service, needed)
        assert "/ready" in " ".join(services[service]["healthcheck"]["test"])


def test_every_node_has_the_same_database_redis_and_operator_key() -> None:
    found = list(nodes().values())
    for setting in ("ZAPGATE_DATABASE_URL", "ZAPGATE_REDIS_URL", "ZAPGATE_API_KEY"):
        assert len({env.get(setting) for env in found}) == 1, setting
    database = resolve(found[0]["ZAPGATE_DATABASE_URL"])
    assert database.startswith("postgresql+asyncpg://")
    assert "@postgres:" in database
    assert resolve(found[0]["ZAPGATE_REDIS_URL"]).startswith("redis://redis:")


def test_every_node_shares_one_data_volume_at_its_data_dir() -> None:
    services = compose()["services"]
    mounts = set()
    for service in nodes():
        data_dir = node_env(service)["ZAPGATE_DATA_DIR"]
        volumes = [str(volume).split(":") for volume in services[service]["volumes"]]
        mounts |= {source for source, target, *_ in volumes if target == data_dir}
        assert any(target == data_dir for _, target, *_ in volumes), service
    assert len(mounts) == 1
    assert next(iter(mounts)) in compose()["volumes"]


def test_every_zapgate_variable_in_the_compose_file_is_a_setting() -> None:
    text = COMPOSE.read_text()
    used = set(re.findall(r"\bZAPGATE_[A-Z0-9_]+", text))
    assert used
    assert used <= setting_names(), f"not zapgate settings: {used - setting_names()}"


def test_zapgate_accepts_each_nodes_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for service in nodes():
        for name in [name for name in os.environ if name.startswith("ZAPGATE_")]:
            monkeypatch.delenv(name)
        for name, value in node_env(service).items():
            monkeypatch.setenv(name, value)
        settings = Settings(_env_file=None)
        assert settings.clustered, service
        assert not settings.is_sqlite, service
        assert settings.node_name == service
        assert settings.host == "0.0.0.0"


def test_no_secret_is_written_in_the_compose_file() -> None:
    text = COMPOSE.read_text()
    assert not re.search(r"zg_[0-9a-f]{6}|[0-9A-Za-z+/_-]{32,}", text), "a key-like literal"
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            text = str(value)
            if SECRET_NAME.search(key):
                assert REQUIRED.match(text), f"{name}.{key} must be ${{VAR:?...}}, not a value"
            password = re.search(r"://[^:/@]+:([^@]*)@", text)
            if password:
                assert REQUIRED.match(password.group(1)), f"{name}.{key} holds a password"


def test_a_node_has_time_to_hand_its_sessions_over_before_it_is_killed() -> None:
    terminate = inspect.signature(BridgeProcess.terminate).parameters["grace"].default
    engine = CLOSE_TIMEOUT + terminate  # a WPPConnect browser that will not close
    needed = GRACEFUL_SHUTDOWN_SECONDS + HANDOVER_FINISH_SECONDS + engine + STOP_SECONDS
    services = compose()["services"]
    for service in nodes():
        grace = str(services[service]["stop_grace_period"])
        match = re.fullmatch(r"(\d+)s", grace)
        assert match is not None, grace
        assert int(match.group(1)) >= needed, f"{service}: {grace} < {needed} s"
        assert services[service].get("stop_signal", "SIGTERM") == "SIGTERM"


def test_the_load_balancer_fronts_every_node_and_keeps_socketio_polling_sticky() -> None:
    services = compose()["services"]
    found = nodes()
    (balancer,) = [name for name, service in services.items() if "haproxy" in image_of(name)]
    waits = services[balancer]["depends_on"]
    assert set(found) <= set(waits)
    assert all(waits[node]["condition"] == "service_healthy" for node in found)
    assert services[balancer]["ports"]
    (mount,) = [str(volume) for volume in services[balancer]["volumes"] if "haproxy" in volume]
    config = (COMPOSE.parent / mount.split(":")[0]).read_text()
    backends = dict(re.findall(r"^backend (\S+)\n((?:[ \t]+.*\n?)+)", config, re.MULTILINE))
    sticky = re.search(r"use_backend (\S+) if \{ path_beg /socket\.io", config)
    assert sticky is not None
    assert "balance source" in backends[sticky.group(1)]
    for body in backends.values():
        assert "/ready" in body
        for node in found:
            address = f"{node}:{node_env(node)['ZAPGATE_PORT']}"
            assert re.search(rf"^\s+server \S+ {re.escape(address)}\b", body, re.MULTILINE)
