"""Without --precision, every command builds at the target's default precision, read from the target table."""

import dataclasses

import pytest

from llama_ort.cli import build_parser
from llama_ort.cli import llama_v2
from llama_ort.cli.common import build_options, default_precisions
from llama_ort.graph.target import TARGETS
from llama_ort.pipeline import OptimizeResult, embedded_model_folder
from llama_ort.pipeline import run as pipeline_run


@pytest.fixture
def cuda_defaults_to_int4(monkeypatch):
    monkeypatch.setitem(TARGETS, "cuda", dataclasses.replace(TARGETS["cuda"], default_precision="int4"))


@pytest.fixture
def builds(monkeypatch) -> list:
    """The options of each optimize call, which builds nothing."""
    options = []

    def optimize(source, output, build_options, *args, **kwargs):
        options.append(build_options)
        return OptimizeResult(output)

    monkeypatch.setattr(pipeline_run, "optimize", optimize)
    monkeypatch.setattr("llama_ort.pipeline.optimize", optimize)
    return options


def test_optimize_the_default_model_and_the_seed_script_take_the_tables_default(
        cuda_defaults_to_int4, builds, tmp_path, monkeypatch):
    assert build_options(build_parser().parse_args(["optimize", "--target", "cuda"])).precision == "int4"
    assert embedded_model_folder("cuda", models_dir=tmp_path).name == "smollm2-135m-instruct-cuda-int4"
    monkeypatch.chdir(tmp_path)
    assert llama_v2.main(["--model_type", "embedded", "--optimize", "--target", "cuda"]) == 0
    assert [options.precision for options in builds] == ["int4", "int4"]


def test_the_help_names_each_targets_default():
    assert default_precisions() == "fp32 on cpu; fp16 on cuda, dml, webgpu"
    assert all(target.default_precision in target.precisions for target in TARGETS.values())
