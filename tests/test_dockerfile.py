"""The container image, checked without a Docker engine.

The build stage's COPY and RUN steps are replayed into a fresh virtualenv, and the image's
default command line is run with --help; the Dockerfile's promises (non-root user, data
volume, health check) are read from the file.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    joined = text.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        result[-1].append((keyword, rest))
    return result


def final(keyword: str) -> list[str]:
    return [rest for k, rest in stages()[-1] if k == keyword]


def test_the_image_is_small_runs_as_a_user_and_keeps_data_in_a_volume():
    _build, runtime = stages()
    assert runtime[0][1].startswith("python:3.") and "-slim" in runtime[0][1]
    [user] = final("USER")
    assert user not in {"root", "0"} and not user.startswith("0:")
    assert any("/data" in json.loads(volume) for volume in final("VOLUME"))
    assert json.loads(final("ENTRYPOINT")[0]) == ["digest"]
    command = json.loads(final("CMD")[0])
    assert command[:2] == ["schedule", "--serve"]
    assert "/config/config.toml" in command
    [healthcheck] = final("HEALTHCHECK")
    assert "/healthz" in healthcheck
    probe = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert probe[:2] == ["python", "-c"]
    compile(probe[2], "HEALTHCHECK", "exec")  # the probe is valid Python
    assert "ENV" in {k for k, _ in runtime} and "DIGEST_CONFIG=/config/config.toml" in " ".join(
        final("ENV")
    )
    assert (REPO / ".dockerignore").exists()


@pytest.mark.slow
def test_the_build_steps_install_a_working_digest(tmp_path):
    build = stages()[0]
    context = tmp_path / "src"
    context.mkdir()
    for keyword, rest in build:
        if keyword != "COPY":
            continue
        *sources, target = shlex.split(rest)
        into_folder = len(sources) > 1 or target.endswith("/")
        for source in sources:
            origin = REPO / source
            destination = context / target / origin.name if into_folder else context / target
            if origin.is_dir():
                shutil.copytree(origin, destination, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(origin, destination)
    [install] = [rest for keyword, rest in build if keyword == "RUN" and "pip install" in rest]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The Dockerfile's pip command, with the virtualenv in place of the image's prefix.
    arguments = [a for a in shlex.split(install) if not a.startswith("--prefix")]
    assert arguments[:2] == ["pip", "install"]
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", *arguments],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    entrypoint = json.loads(final("ENTRYPOINT")[0])
    command = json.loads(final("CMD")[0])
    shown = subprocess.run(
        [str(venv / "bin" / entrypoint[0]), *command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "Run the digest on the [schedule]" in shown.stdout
    # The templates made it into the installed package.
    templates = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from digest.render.environment import builtin_templates as b; print(b())",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert "site-packages/digest/templates" in templates.stdout
