"""`llama-ort bench` checks what it is asked before building or running anything: one line, exit code 2."""

import pytest

from llama_ort.bench import harness
from llama_ort.cli import main


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fails the test if the bench gets as far as resolving its sources (a conversion, a build, a run)."""
    def resolve(*args):
        raise AssertionError("the bench started work before checking its arguments")

    monkeypatch.setattr(harness, "resolve", resolve)


@pytest.mark.parametrize("args, message", [
    (["--precisions", "int8"], "--precisions: unknown precision 'int8'"),
    (["--llama-ort-variant", "int9"], "--llama-ort-variant: 'int9' must start with a precision"),
    (["--llama-ort-variant", "int4"], "--llama-ort-variant: 'int4' has no build arguments"),
    (["--llama-ort-variant", "int4 --block-size 7"], "--block-size: 7 is not one of"),
    (["--llama-ort-variant", "int4 --blocksize 64"], "unrecognized arguments: --blocksize 64"),
    (["--llama-ort-variant", "int4 --embeddings int4 --zero-points"], "--embeddings int4 reads symmetric blocks"),
])
def test_bad_bench_arguments_are_one_line_and_exit_2_before_any_work(nothing_runs, capsys, args, message):
    assert main(["bench", "--peers", "llama-ort", *args]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error


def test_prompts_longer_than_the_context_are_refused(nothing_runs, capsys, tmp_path):
    assert main(["bench", "--shape", "smollm2-135m", "--peers", "llama-ort", "--prompt-lengths", "9000",
                 "--workdir", str(tmp_path / "work")]) == 2
    assert "--prompt-lengths: the longest prompt and --new-tokens take 9256 positions, more than the model's " \
           "context length, 8192" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()
