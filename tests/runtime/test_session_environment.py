"""Kernel settings that onnxruntime reads from the environment when a session is created: set for the creation
only, for models whose every query head has its own KV head, and never over a value the user set."""

import dataclasses
import os

import onnxruntime as ort
import pytest

from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort.runtime import providers, session
from llama_ort_testing.reference import random_checkpoint, tiny_spec

VARIABLE = "LLAMA_ORT_TEST_KERNEL_SETTING"


@pytest.fixture
def seen_at_creation(monkeypatch):
    """The provider "cpu" with a kernel setting, and the value each session creation saw (None: unset)."""
    cpu = dataclasses.replace(providers.PROVIDERS["cpu"], one_kv_head_per_query_environment=((VARIABLE, "0"),))
    monkeypatch.setitem(providers.PROVIDERS, "cpu", cpu)
    seen = []
    real = ort.InferenceSession

    def recording(*args, **kwargs):
        seen.append(os.environ.get(VARIABLE))
        return real(*args, **kwargs)

    monkeypatch.setattr(session.ort, "InferenceSession", recording)
    monkeypatch.delenv(VARIABLE, raising=False)
    return seen


def built(tmp_path, num_kv_heads):
    folder = tmp_path / f"kv{num_kv_heads}"
    folder.mkdir()
    build_model(random_checkpoint(tiny_spec(num_kv_heads=num_kv_heads)), folder, BuildOptions(precision="fp32"))
    return folder


def test_set_while_a_session_of_one_kv_head_per_query_is_created(tmp_path, seen_at_creation):
    session.load_model(built(tmp_path, num_kv_heads=4), max_seq_len=32)  # tiny_spec has 4 query heads
    assert seen_at_creation == ["0"]
    assert VARIABLE not in os.environ


def test_not_set_for_grouped_query_heads(tmp_path, seen_at_creation):
    session.load_model(built(tmp_path, num_kv_heads=2), max_seq_len=32)
    assert seen_at_creation == [None]


def test_a_value_the_user_set_wins_and_stays(tmp_path, seen_at_creation, monkeypatch):
    monkeypatch.setenv(VARIABLE, "1")
    session.load_model(built(tmp_path, num_kv_heads=4), max_seq_len=32)
    assert seen_at_creation == ["1"]
    assert os.environ[VARIABLE] == "1"
