"""The README's two set-up commands are what a new user and CI run: `make run` serves the embedded
default on 127.0.0.1:8000 after installing, `make test` installs and runs the suite, `.ci/run` calls it,
and the install pins torch before anything else."""

from __future__ import annotations

import os
import re
import subprocess

from tests.helpers import REPO_ROOT


def _readme_commands() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", setup, re.S)
    assert block, "the set-up section needs a bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def _dry_run(target: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", target],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    return result.stdout


def test_readme_has_exactly_two_setup_commands() -> None:
    assert _readme_commands() == ["make run", "make test"]


def test_make_run_installs_then_serves_the_embedded_default() -> None:
    steps = _dry_run("run").splitlines()
    torch = next(i for i, line in enumerate(steps) if "pip install" in line and "torch==2.13.0" in line)
    project = next(i for i, line in enumerate(steps) if "pip install" in line and "-e '.[dev]'" in line)
    assert torch < project, "torch must be installed, pinned, before the project"
    assert steps[-1].endswith("foresight serve --host 127.0.0.1 --port 8000")


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", ci, re.M)
    assert "FORESIGHT_REQUIRE_POSTGRES=1" in ci
    assert "pytest" in _dry_run("test") or "scripts/test.sh" in _dry_run("test")
    assert "pytest" in (REPO_ROOT / "scripts" / "test.sh").read_text()
