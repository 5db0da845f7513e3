"""The command line: generate and chat, the seed's scripts, and bad input as one line with exit code 2."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llama_ort.bench.random_checkpoint import write_hf_tokenizer
from llama_ort.checkpoint.random import write_hf
from llama_ort.cli import main, report_errors
from llama_ort.tokenizer import Tokenizer
from llama_ort_testing.reference import random_checkpoint, tiny_spec

ROOT = Path(__file__).resolve().parents[2]


def run_python(*args, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """`python *args` from the repository root with the package on the path (args may be bytes)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, *args], input=stdin, capture_output=True, cwd=ROOT, env=env, timeout=120)


def test_generate_streams_the_text_then_the_speed(tiny, capsys):
    assert main(["generate", "--model", str(tiny.folder), "--prompt", "Hello", "--max-new-tokens", "20",
                 "--ignore-eos", "--raw-prompt"]) == 0
    out = capsys.readouterr().out
    text, stats = out.rstrip("\n").rsplit("\n\n", 1)
    tokenizer = Tokenizer.from_folder(tiny.folder)
    assert len(tokenizer.encode(text.rstrip("\n"), add_special_tokens=False)) <= 20
    assert stats.startswith("prompt: 6 tokens, ") and "generation: 20 tokens, " in stats
    assert stats.endswith("tokens/s (length)")


def test_chat_reads_piped_messages_with_reset_and_exit(tiny):
    result = run_python("-m", "llama_ort", "chat", "--model", str(tiny.folder), "--max-new-tokens", "6",
                        stdin="Hi\n/reset\nHi\n/exit\nnever read\n".encode())
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert lines[1] == "(conversation reset)"
    assert lines[0] == lines[2]  # the same first message after a reset gets the same answer
    stats = result.stderr.decode().splitlines()
    assert len(stats) == 2 and all("tokens/s;" in line for line in stats)
    assert "; 0 of the prompt's" in stats[0] and "; 0 of the prompt's" not in stats[1]  # the slot kept "Hi"


@pytest.mark.parametrize("script, flag", [("run_llama_v2_io_binding.py", "--max_seq_len=80"),
                                          ("run_llama_v2_dynamic_io_binding.py", "--padding=8")])
def test_the_seed_scripts_print_the_time_then_the_answer(tiny, script, flag):
    result = run_python(script, "--prompt=What is the lightest element?", f"--model_dir={tiny.folder}",
                        "--max_gen_len=30", "--ignore_eos", flag)
    assert result.returncode == 0, result.stderr.decode()
    timing, answer = result.stdout.decode().split("\n", 1)
    assert timing.startswith("Execution took ") and timing.endswith(" tokens per second)")
    assert answer.rstrip("\n")


def error_of(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_bad_input_is_one_line_and_exit_code_2(tiny, tmp_path):
    model = str(tiny.folder)
    cases = {
        "prompt: is empty": ["-m", "llama_ort", "generate", "--model", model, "--prompt", "  "],
        "prompt: is not valid UTF-8 text": ["-m", "llama_ort", "generate", "--model", model, "--prompt", b"caf\xe9"],
        "no such model folder": ["-m", "llama_ort", "generate", "--model", str(tmp_path / "nope"), "--prompt", "Hi"],
        "this onnxruntime has no CUDAExecutionProvider; install it with":
            ["-m", "llama_ort", "generate", "--model", model, "--prompt", "Hi", "--provider", "cuda"],
        "max_seq_len: the prompt (12 tokens) plus max_new_tokens (256) needs 268 positions":
            ["-m", "llama_ort", "generate", "--model", model, "--prompt", "Hello there", "--max-seq-len", "64",
             "--raw-prompt"],
        # the chat template makes the question "u: What is the lightest element?\na: " (36 tokens)
        "needs 292 positions, but the model was loaded with max_seq_len 256":
            ["run_llama_v2_io_binding.py", "--prompt=What is the lightest element?", f"--model_dir={model}"],
        "prompt: is empty ": ["run_llama_v2_dynamic_io_binding.py", "--prompt=", f"--model_dir={model}"],
    }
    for message, args in cases.items():
        assert message.strip() in error_of(run_python(*args)), args


def test_chat_input_that_is_not_utf8_is_one_line_and_exit_code_2(tiny):
    result = run_python("-m", "llama_ort", "chat", "--model", str(tiny.folder), "--max-new-tokens", "8",
                        stdin=b"caf\xe9\n")
    assert "standard input: is not valid UTF-8 text" in error_of(result)


def test_generate_sends_the_prompt_in_the_chat_template_unless_raw(tiny, capsys):
    for flags, prompt_tokens in (([], 12), (["--raw-prompt"], 6)):  # "u: Hello\na: " or BOS + "Hello"
        assert main(["generate", "--model", str(tiny.folder), "--prompt", "Hello", "--max-new-tokens", "4", *flags]) == 0
        assert f"prompt: {prompt_tokens} tokens" in capsys.readouterr().out


def test_more_bad_input_is_one_line_and_exit_code_2(tiny, tmp_path):
    model = str(tiny.folder)
    broken = tmp_path / "broken"
    shutil.copytree(tiny.folder, broken)
    (broken / "decoder_model.onnx.data").unlink()
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("not a folder")
    cases = {
        "argument --num-layers: must be at least 1, got 0": ["optimize", "--num-layers", "0"],
        "argument --max-new-tokens: must be at least 1, got -3": ["generate", "--prompt", "Hi", "--max-new-tokens",
                                                                  "-3"],
        "onnxruntime cannot load it": ["generate", "--model", str(broken), "--prompt", "Hi"],
        "an answer of 512 tokens leaves no room for a prompt in 20 positions":
            ["chat", "--model", model, "--max-seq-len", "20"],
        f"--cache-dir: {a_file} is a file": ["optimize", "--output", str(tmp_path / "out"), "--cache-dir",
                                              str(a_file)],
    }
    for message, args in cases.items():
        assert message in error_of(run_python("-m", "llama_ort", *args, stdin=b"Hello\n")), args


def test_info_describes_a_checkpoint_without_a_tokenizer_or_chat_template(tmp_path, capsys):
    folder = tmp_path / "random"
    write_hf(tiny_spec(), folder, random_checkpoint(tiny_spec()).tensors())
    assert main(["info", str(folder)]) == 0
    assert "tokenizer: none" in capsys.readouterr().out
    write_hf_tokenizer(tiny_spec(), folder)  # a tokenizer, but no chat template
    assert main(["info", str(folder), "--prompt", "Hi"]) == 0
    assert "chat template: none" in capsys.readouterr().out


def test_an_os_error_about_a_path_is_one_line_and_exit_code_2(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "file"
    assert report_errors(lambda: missing.read_text()) == 2
    assert capsys.readouterr().err == f"llama-ort: error: {missing}: No such file or directory\n"
