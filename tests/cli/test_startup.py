"""What every command pays before it starts: building the parser imports no onnx (its import of ml_dtypes took
0.8 s on a 2-core machine: most of `llama-ort info`'s time once the GGUF metadata were read quickly)."""

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_building_the_parser_imports_no_onnx():
    code = "import sys; from llama_ort.cli import build_parser; build_parser(); print(sorted(m for m in sys.modules " \
           "if m == 'onnx' or m.startswith('onnx.')))"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
