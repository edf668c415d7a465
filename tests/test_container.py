"""The Dockerfile, without a container engine: hadolint, then its own steps run for real.

No container engine runs on our machines, so the build is performed by a small interpreter
of the Dockerfile's instructions: each stage gets a directory standing for its filesystem and
a fresh virtual environment standing for the base image's Python (with pip, and offline: the
packages the image would download are lent from the test environment). COPY takes from the
build context as .dockerignore filters it, RUN runs the Dockerfile's own command lines with
their container paths mapped into the stage directories, and the result is started with the
image's ENTRYPOINT, CMD and ENV against the simulator, and checked with its HEALTHCHECK.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from exporter import __version__
from exporter.config import DEFAULT_PORT
from tests.exposition import Exposition
from tests.procs import free_port, running
from tests.tools import ROOT, require

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CONFIG_IN_IMAGE = "/etc/sync-status-exporter/config.yml"


@dataclass
class Instruction:
    """One Dockerfile instruction: keyword, leading --flags and the rest."""

    keyword: str
    flags: dict[str, str]
    rest: str


def instructions(text: str) -> list[Instruction]:
    """The instructions in order, continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    result = []
    for line in logical:
        keyword, _, rest = line.strip().partition(" ")
        flags: dict[str, str] = {}
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        result.append(Instruction(keyword.upper(), flags, rest))
    return result


def stages(text: str) -> list[list[Instruction]]:
    """The instructions of each stage, FROM first."""
    found: list[list[Instruction]] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            found.append([])
        found[-1].append(instruction)
    return found


def ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (excludes, pattern) rules; the last rule matching a path decides."""
    rules = []
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        for index, part in enumerate(pattern.split("/")):
            if part == "**":
                regex += "(?:[^/]+/)*"
                continue
            piece = re.escape(part).replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
            regex += piece + ("/" if index < len(pattern.split("/")) - 1 else "")
        rules.append((not include, re.compile(regex)))
    return rules


def context_files() -> set[str]:
    """The files docker would send as the build context, relative to the repository root."""
    rules = ignore_rules()

    def excluded(path: str) -> bool:
        parts = path.split("/")
        verdict = False
        for excludes, pattern in rules:
            if any(pattern.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
                verdict = excludes
        return verdict

    reincluded = [p.pattern for excludes, p in rules if not excludes]
    files = set()
    for directory, subdirectories, names in os.walk(ROOT):
        relative = Path(directory).relative_to(ROOT).as_posix()
        prefix = "" if relative == "." else relative + "/"
        subdirectories[:] = [
            name
            for name in subdirectories
            if not excluded(prefix + name)
            or any(pattern.startswith(re.escape(prefix + name)) for pattern in reincluded)
        ]
        files |= {prefix + name for name in names if not excluded(prefix + name)}
    return files


def closure(names: list[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions `names` need, following their requirements and extras."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = [(name, "") for name in names]
    while todo:
        text, extra = todo.pop()
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        key = requirement.name.lower().replace("_", "-")
        dist = importlib.metadata.distribution(requirement.name)
        assert requirement.specifier.contains(dist.version, prereleases=True), requirement
        wanted = {"", *requirement.extras}
        if key in seen and not requirement.extras:
            continue
        seen[key] = dist
        todo.extend((child, each) for child in dist.requires or [] for each in wanted)
    return list(seen.values())


def fresh_python(path: Path, lent: list[str]) -> Path:
    """A new venv standing for an image's Python: pip and `lent` packages visible, nothing else.

    The lent packages are linked into one directory named by a .pth file, so pip finds them
    installed (the image would download them) while everything pip installs lands in the venv.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    packages = path / "lent"
    packages.mkdir()
    for dist in closure(lent):
        for entry in {Path(str(file)).parts[0] for file in dist.files or []}:
            source = Path(str(dist.locate_file(entry)))
            target = packages / entry
            if entry != ".." and source.exists() and not target.exists():
                target.symlink_to(source)
    (site_packages(path) / "_lent.pth").write_text(f"{packages}\n")
    return path


def site_packages(venv: Path) -> Path:
    """The venv's site-packages directory."""
    return (
        venv
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / ("site-packages")
    )


@dataclass
class Stage:
    """One stage's filesystem, Python and the image settings it declares."""

    name: str
    base: str
    root: Path
    python: Path
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    mounts: dict[str, Path] = field(default_factory=dict)
    settings: dict[str, Instruction] = field(default_factory=dict)

    def host(self, path: str) -> Path:
        """Where a path inside the stage lives on this machine."""
        absolute = path if path.startswith("/") else f"{self.workdir.rstrip('/')}/{path}"
        for target, source in self.mounts.items():
            if absolute == target or absolute.startswith(target + "/"):
                return source / absolute[len(target) :].lstrip("/")
        return self.root / absolute.lstrip("/")

    def environment(self, home: Path) -> dict[str, str]:
        """The environment of a process in this stage, offline and isolated from ours."""
        return {
            "PATH": f"{self.python / 'bin'}:/usr/bin:/bin",
            "HOME": str(home),
            "PYTHONNOUSERSITE": "1",
            "PIP_NO_INDEX": "1",
            # pip reads PIP_NO_BUILD_ISOLATION inverted: 0 turns build isolation off, so the
            # build uses the lent setuptools instead of downloading one.
            "PIP_NO_BUILD_ISOLATION": "0",
            **self.env,
        }


def copy(
    stage: Stage, instruction: Instruction, built: dict[str, Stage], context: set[str]
) -> None:
    """COPY from the build context as .dockerignore filters it, or from an earlier stage."""
    *sources, destination = shlex.split(instruction.rest)
    origin = built.get(instruction.flags.get("from", ""))
    target = stage.host(destination)
    for source in sources:
        if origin:
            base = origin.host(source)
            files = (
                [path for path in base.rglob("*") if path.is_file()] if base.is_dir() else [base]
            )
        else:
            base = ROOT / source.rstrip("/")
            name = source.rstrip("/")
            files = [ROOT / f for f in sorted(context) if f == name or f.startswith(name + "/")]
        assert files, f"COPY {source}: nothing to copy (missing, or left out by .dockerignore)"
        for path in files:
            if base.is_dir():
                out = target / path.relative_to(base)
            elif destination.endswith("/") or len(sources) > 1:
                out = target / path.name
            else:
                out = target
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)


def run(stage: Stage, instruction: Instruction, built: dict[str, Stage], home: Path) -> None:
    """RUN the Dockerfile's command line with its container paths mapped to this machine."""
    mount = instruction.flags.get("mount")
    stage.mounts = {}
    if mount:
        options = dict(item.split("=", 1) for item in mount.split(","))
        assert options["type"] == "bind", mount
        stage.mounts[options["target"]] = built[options["from"]].host(options["source"])
    command = re.sub(
        r"(?<![\w./-])/[^\s;&|'\"]*", lambda m: str(stage.host(m.group(0))), instruction.rest
    )
    cwd = stage.host(stage.workdir)
    cwd.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=cwd,
        env=stage.environment(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"RUN {instruction.rest}\n{result.stdout}\n{result.stderr}"
    stage.mounts = {}


def build(tmp: Path) -> Stage:
    """Perform every stage; return the last one, the image."""
    context = context_files()
    built: dict[str, Stage] = {}
    stage: Stage | None = None
    home = tmp / "home"
    home.mkdir()
    all_stages = stages(DOCKERFILE.read_text(encoding="utf-8"))
    for number, steps in enumerate(all_stages):
        base, _, name = steps[0].rest.partition(" AS ")
        final = number == len(all_stages) - 1
        # The build stage lends only a build backend; the image lends the exporter's needs.
        lent = ["pip", *(importlib.metadata.requires("sync-status-exporter") or [])]
        python = fresh_python(tmp / f"python-{number}", lent if final else ["pip", "setuptools"])
        stage = Stage(name or str(number), base.strip(), tmp / f"stage-{number}", python)
        for instruction in steps[1:]:
            if instruction.keyword == "WORKDIR":
                stage.workdir = instruction.rest
                stage.host(stage.workdir).mkdir(parents=True, exist_ok=True)
            elif instruction.keyword == "COPY":
                copy(stage, instruction, built, context)
            elif instruction.keyword == "RUN":
                run(stage, instruction, built, home)
            elif instruction.keyword == "ENV":
                pairs = (item.partition("=") for item in shlex.split(instruction.rest))
                stage.env.update((key, value) for key, _, value in pairs)
            else:
                stage.settings[instruction.keyword] = instruction
        built[stage.name] = stage
    assert stage is not None
    return stage


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Stage:
    """The Dockerfile performed once for the module's tests."""
    return build(tmp_path_factory.mktemp("image"))


def exec_form(instruction: Instruction) -> list[str]:
    """An ENTRYPOINT, CMD or HEALTHCHECK CMD in JSON exec form."""
    text = instruction.rest.removeprefix("CMD").strip()
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), text
    return value


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under `roots` with its size and modification time."""
    found = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                stat = path.stat()
                found[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return found


def test_hadolint_finds_nothing() -> None:
    hadolint = require("hadolint")
    result = subprocess.run(
        [hadolint, "--format", "json", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stdout


def test_hadolint_would_flag_an_unpinned_base_image(tmp_path: Path) -> None:
    """The lint reads the file's content: the same file on a `latest` base must fail it."""
    hadolint = require("hadolint")
    copy_of = tmp_path / "Dockerfile"
    text = DOCKERFILE.read_text(encoding="utf-8")
    copy_of.write_text(re.sub(r"^FROM python:\S+", "FROM python:latest", text, flags=re.M))
    result = subprocess.run([hadolint, "--format", "json", str(copy_of)], capture_output=True)
    assert result.returncode != 0
    assert "DL3007" in {finding["code"] for finding in json.loads(result.stdout)}


def test_image_settings() -> None:
    all_stages = stages(DOCKERFILE.read_text(encoding="utf-8"))
    assert len(all_stages) >= 2, "multi-stage: build the wheel, then install it"
    for steps in all_stages:
        image_name = steps[0].rest.split()[0]
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image_name), image_name
    final = {step.keyword: step for step in all_stages[-1]}
    user = final["USER"].rest
    assert re.fullmatch(r"\d+(:\d+)?", user) and int(user.split(":")[0]) != 0, user
    assert final["EXPOSE"].rest == str(DEFAULT_PORT)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert exec_form(final["ENTRYPOINT"]) == [next(iter(scripts))]
    assert exec_form(final["CMD"]) == ["--config.file", CONFIG_IN_IMAGE]
    assert "/-/healthy" in final["ENV"].rest and "curl" not in final["HEALTHCHECK"].rest
    assert exec_form(final["HEALTHCHECK"])[0] == "python"


def test_wheel_carries_the_license(image: Stage) -> None:
    (wheel,) = image.root.parent.glob("stage-*/**/*.whl")
    with zipfile.ZipFile(wheel) as archive:
        info = f"sync_status_exporter-{__version__}.dist-info"
        metadata = email.parser.Parser().parsestr(archive.read(f"{info}/METADATA").decode())
        license_text = archive.read(f"{info}/licenses/LICENSE").decode()
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    assert license_text == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text


@dataclass
class Started:
    """The image's exporter, serving, with the environment it runs in."""

    url: str
    env: dict[str, str]
    files_before: dict[str, tuple[int, int]]


@pytest.fixture
def own_simulator(tmp_path: Path) -> Iterator[str]:
    """A simulator of its own (the shared one carries other tests' failing syncs), started
    with a signing key file so that `--print-config` prints a config it accepts."""
    listen = f"127.0.0.1:{free_port()}"
    key = ["--paragon-key", str(tmp_path / "paragon-key.pem")]
    command = [sys.executable, "-m", "exporter.simulator", "--listen", listen, *key]
    with running([*command, "--period", "3600"], f"http://{listen}/_sim/requests"):
        yield subprocess.run(
            [*command, "--print-config"], capture_output=True, text=True, check=True
        ).stdout


@pytest.fixture
def started(image: Stage, own_simulator: str, tmp_path: Path) -> Iterator[Started]:
    """The image's ENTRYPOINT and CMD, the config mounted where CMD reads it, on a free port."""
    config = own_simulator
    image.host(CONFIG_IN_IMAGE).parent.mkdir(parents=True, exist_ok=True)
    image.host(CONFIG_IN_IMAGE).write_text(config)
    (program,) = exec_form(image.settings["ENTRYPOINT"])
    arguments = [
        str(image.host(a)) if a.startswith("/") else a for a in exec_form(image.settings["CMD"])
    ]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **image.environment(tmp_path),
        "PYTHONPATH": "",
        "SYNC_EXPORTER_HEALTH_URL": f"{url}/-/healthy",
    }
    command = [
        str(image.python / "bin" / program),
        *arguments,
        "--web.listen-address",
        f"127.0.0.1:{port}",
    ]
    before = snapshot(image.root, image.python)
    with running(command, f"{url}/-/ready", env=env, cwd=image.host(image.workdir)):
        yield Started(url, env, before)


def test_the_image_serves_the_simulators_syncs(image: Stage, started: Started) -> None:
    m = Exposition(httpx.get(f"{started.url}/metrics", timeout=30).text)
    up = m.find("sync_up")
    assert len(up) > 10 and all(value == 1 for _, value in up), up
    assert {labels["provider"] for labels, _ in up} == {"paragon", "terminal", "sequin", "generic"}
    # Sources that name a preset read it from the installed package: the wheel ships them.
    assert {"demo-fivetran", "demo-nango", "demo-merge", "demo-airbyte", "demo-hightouch"} <= {
        labels["source"] for labels, _ in up
    }
    ((labels, _),) = m.find("sync_exporter_build_info")
    assert labels["version"] == __version__
    where = subprocess.run(
        [str(image.python / "bin" / "python"), "-c", "import exporter; print(exporter.__file__)"],
        env=started.env,
        cwd=image.host(image.workdir),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(where.strip()).is_relative_to(site_packages(image.python)), where
    after = snapshot(image.root, image.python)
    assert after == started.files_before, "the exporter wrote into the image's filesystem"


def test_the_healthcheck_passes_while_serving_and_fails_elsewhere(
    image: Stage, started: Started
) -> None:
    env = started.env
    command = exec_form(image.settings["HEALTHCHECK"])
    command[0] = str(image.python / "bin" / command[0])
    assert subprocess.run(command, env=env, capture_output=True, timeout=10).returncode == 0
    dead = {**env, "SYNC_EXPORTER_HEALTH_URL": f"http://127.0.0.1:{free_port()}/-/healthy"}
    assert subprocess.run(command, env=dead, capture_output=True, timeout=10).returncode != 0
