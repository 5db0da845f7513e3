"""The build's memory stays within a few layers: the CI-sized version of docs/build-memory.md.

A Llama-2-7B-shaped build must stay under 4 GB (fp16) and 6 GB (int4) of anonymous memory: about 10 and
15 times its largest layer (404 MB in fp16). Here a ~490 MB checkpoint (12 layers) gets the same bounds
scaled to its own largest layer, plus 200 MB for the interpreter and libraries. Holding the whole model
would pass them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER_FACTOR = {"fp16": 10, "int4": 15}  # 4 GB and 6 GB over Llama-2-7B's largest layer
BASE_MB = 200


def layer_mb(spec) -> float:
    per_layer = spec.hidden_size * (2 * spec.q_size + 2 * spec.kv_size) + 3 * spec.hidden_size * spec.intermediate_size
    return per_layer * 2 / 2**20  # fp16


@pytest.fixture(scope="module")
def measurements(tmp_path_factory):
    work = tmp_path_factory.mktemp("memory")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, str(ROOT / "scripts/measure_build_memory.py"), "--work", str(work),
                             "--shape", "small"], env=env, capture_output=True, text=True, timeout=900, check=True)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {line["precision"]: line for line in lines if "precision" in line}


@pytest.mark.parametrize("precision", ["fp16", "int4"])
def test_build_holds_a_few_layers_not_the_model(measurements, precision):
    sys.path.insert(0, str(ROOT / "scripts"))
    from measure_build_memory import SHAPES

    spec = SHAPES["small"]
    bound_mb = BASE_MB + LAYER_FACTOR[precision] * layer_mb(spec)
    model_mb = (spec.num_layers * layer_mb(spec)) + 2 * spec.vocab_size * spec.hidden_size * 2 / 2**20
    assert bound_mb < BASE_MB + model_mb  # the bound would catch a build that holds the model
    assert 0 < measurements[precision]["peak_rss_anon_mb"] <= bound_mb, measurements[precision]
