"""The runtime tests' shared models, built once per session (tiny_models.py says how)."""

import pytest

from llama_ort_testing.tiny_models import SPEC, Built, build


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Built:
    return build(tmp_path_factory, SPEC, "single")


@pytest.fixture(scope="session")
def tiny_merged(tmp_path_factory) -> Built:
    return build(tmp_path_factory, SPEC, "merged")
