"""Test helpers never hide an installed module.

transformers imports the PyPI package `kernels`; a flat tests/kernels.py on sys.path once took its place and
failed 100 tests. Helpers live in the package llama_ort_testing, and no test folder is put on sys.path.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def importable_names(folder: Path) -> set[str]:
    """The top-level modules and packages a folder on sys.path offers, leaving out pytest's own files."""
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "conftest" and not p.stem.startswith("test_")}
    packages = {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    return modules | packages


def test_only_the_helper_package_is_importable_from_the_tests():
    test_folders = {Path(p).resolve() for p in sys.path if p and Path(p).resolve().is_relative_to(TESTS)}
    assert test_folders == {TESTS}, "a test folder other than tests/ is on sys.path"
    assert importable_names(TESTS) == {"llama_ort_testing"}


def test_no_helper_shares_a_name_with_an_installed_distribution():
    installed = set(importlib.metadata.packages_distributions())
    assert not importable_names(TESTS) & installed
