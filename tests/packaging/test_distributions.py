"""Gradebot's wheel holds the product only; the sandbox (a development tool) is its own distribution."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(".venv", "node_modules", ".git", "data", "__pycache__", "*.egg-info", "build", ".*_cache")


def _wheel_contents(project: Path, out: Path) -> set[str]:
    """Build the project's wheel (pip, isolated build as a user's install would) and list its top-level entries."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(project)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return {name.split("/", 1)[0] for name in archive.namelist()}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the working tree without build debris, so building leaves the checkout untouched."""
    copy = tmp_path_factory.mktemp("source") / "gradebot"
    shutil.copytree(REPO_ROOT, copy, ignore=SKIP)
    return copy


def test_gradebots_wheel_holds_the_product_and_no_sandbox(source: Path, tmp_path: Path) -> None:
    top = _wheel_contents(source, tmp_path)
    assert {"app.py", "bot", "cards", "graph", "storage"} <= top
    assert not {"sandbox", "tests", "bench", "devtools"} & top


def test_the_sandbox_is_a_wheel_of_its_own_without_gradebot(source: Path, tmp_path: Path) -> None:
    top = _wheel_contents(source / "sandbox", tmp_path)
    assert "sandbox" in top
    assert not {"bot", "cards", "graph", "storage", "app.py"} & top
