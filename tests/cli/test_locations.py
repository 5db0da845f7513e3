"""Default locations: one per-user folder ($LLAMA_ORT_HOME, else the platform's cache folder), the same from any
working directory, where nothing is written unasked."""

import shutil
from pathlib import Path

import pytest

from llama_ort import locations
from llama_ort.bench.placeholder_tokenizer import write_hf_tokenizer
from llama_ort.checkpoint.random import random_tensors, write_hf
from llama_ort.cli import main
from llama_ort.pipeline import run as pipeline_run
from llama_ort_testing.tiny_models import SPEC, build

EMBEDDED_DEFAULT = "smollm2-135m-instruct-cpu-fp32"  # the embedded model's folder name with the defaults


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv(locations.HOME_VARIABLE, str(folder))
    return folder


@pytest.fixture
def two_directories(tmp_path) -> list[Path]:
    folders = [tmp_path / "here", tmp_path / "elsewhere" / "deeper"]
    for folder in folders:
        folder.mkdir(parents=True)
    return folders


def test_generate_finds_or_builds_the_default_model_in_the_home_from_any_directory(
        home, two_directories, tmp_path_factory, monkeypatch, capsys):
    tiny = build(tmp_path_factory, SPEC, "single")
    builds = []

    def build_embedded(source, output, options, cache_dir=None):  # the tiny model stands in for SmolLM2's build
        builds.append(output)
        shutil.copytree(tiny.folder, output)

    monkeypatch.setattr(pipeline_run, "optimize", build_embedded)
    for directory in two_directories:
        monkeypatch.chdir(directory)
        assert main(["generate", "--prompt", "Hi", "--max-new-tokens", "2", "--raw-prompt"]) == 0
    assert builds == [home / "models" / EMBEDDED_DEFAULT]  # built once, from the first directory; found from both
    assert [list(directory.iterdir()) for directory in two_directories] == [[], []]


def test_optimize_writes_the_model_and_its_cache_in_the_home_from_any_directory(home, two_directories, tmp_path,
                                                                               monkeypatch, capsys):
    checkpoint = tmp_path / "checkpoint"
    write_hf(SPEC, checkpoint, random_tensors(SPEC, seed=1))
    write_hf_tokenizer(SPEC, checkpoint)
    for directory in two_directories:
        monkeypatch.chdir(directory)
        assert main(["optimize", str(checkpoint), "--no-verify"]) == 0
    output = home / "models" / "checkpoint-cpu-fp32"
    assert capsys.readouterr().out.count(f"optimized model: {output} ") == 2
    assert (output / "llama-ort.json").is_file()
    assert any((home / "cache").iterdir())
    assert [list(directory.iterdir()) for directory in two_directories] == [[], []]


def test_the_flags_still_override_the_home(home, tmp_path, monkeypatch):
    recorded = []
    monkeypatch.setattr("llama_ort.pipeline.optimize", lambda *args, **kwargs: recorded.append(args[1:4]) or
                        pipeline_run.OptimizeResult(args[1]))
    assert main(["optimize", "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")]) == 0
    [(output, _, cache_dir)] = recorded
    assert (output, cache_dir) == (tmp_path / "out", tmp_path / "c")
    assert not home.exists()


def test_info_says_where_models_and_the_cache_go(home, tiny_hf, capsys):
    assert main(["info", str(tiny_hf)]) == 0
    out = capsys.readouterr().out
    assert f"llama-ort's folders: {home} ($LLAMA_ORT_HOME)" in out
    assert f"built models:     {home / 'models'}  (optimize --output" in out
    assert f"pass cache:       {home / 'cache'}  (optimize --cache-dir)" in out


@pytest.mark.parametrize("platform, environment, expected", [
    ("linux", {}, "~/.cache/llama-ort"),
    ("linux", {"XDG_CACHE_HOME": "/var/cache/me"}, "/var/cache/me/llama-ort"),
    ("linux", {"XDG_CACHE_HOME": "relative"}, "~/.cache/llama-ort"),  # the XDG spec ignores relative paths
    ("darwin", {}, "~/Library/Caches/llama-ort"),
    ("win32", {"LOCALAPPDATA": "/users/me/AppData/Local"}, "/users/me/AppData/Local/llama-ort"),
    ("linux", {"LLAMA_ORT_HOME": "/data/llama"}, "/data/llama"),
    ("darwin", {"LLAMA_ORT_HOME": "~/llama"}, "~/llama"),
])
def test_the_home_is_the_variable_else_the_platforms_cache_folder(monkeypatch, platform, environment, expected):
    for name in ("LLAMA_ORT_HOME", "XDG_CACHE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(locations.sys, "platform", platform)
    assert locations.home() == Path(expected).expanduser()

