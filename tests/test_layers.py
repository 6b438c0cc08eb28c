"""The one-way imports of docs/architecture.md: forecasting <- policies <- replay <- service, and no pure
package imports web or database code (import-linter contracts, plus a direct AST check)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

FORBIDDEN = {
    "forecasting": {
        "service",
        "replay",
        "policies",
        "fastapi",
        "starlette",
        "sqlalchemy",
        "alembic",
        "psycopg",
        "uvicorn",
    },
    "policies": {"service", "replay", "fastapi", "starlette", "sqlalchemy", "alembic", "psycopg", "uvicorn"},
    "replay": {"service", "fastapi", "starlette", "sqlalchemy", "alembic", "psycopg", "uvicorn", "typer"},
}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_pure_packages_import_nothing_forbidden(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(_imported_roots(path) & FORBIDDEN[package])
        for path in (REPO_ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_import_linter_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run([lint_imports], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout and "BROKEN" not in result.stdout


def test_every_imported_library_is_declared() -> None:
    """A fresh install gets everything the code imports: each third-party import of the shipped packages
    belongs to a distribution that pyproject.toml declares (directly, not only through another package)."""
    import tomllib
    from importlib.metadata import packages_distributions

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = {_canonical(spec) for spec in project["dependencies"]}
    providers = packages_distributions()
    own = {"service", "replay", "forecasting", "policies", "migrations"}
    undeclared: dict[str, list[str]] = {}
    for package in sorted(own - {"migrations"}):
        for path in (REPO_ROOT / package).rglob("*.py"):
            for root in _imported_roots(path) - own - set(sys.stdlib_module_names):
                dists = {_canonical(d) for d in providers.get(root, [root])}
                if not dists & declared:
                    undeclared.setdefault(root, []).append(str(path.relative_to(REPO_ROOT)))
    assert undeclared == {}


def _canonical(requirement: str) -> str:
    import re

    name = re.split(r"[\[<>=!~; ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()
