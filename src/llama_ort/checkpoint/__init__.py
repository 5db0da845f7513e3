"""Reading checkpoints: Hugging Face folders, Meta's original layout and GGUF files, into one ModelSpec
and lazily read tensors under one naming scheme (names.py)."""

from __future__ import annotations

from pathlib import Path

from ..errors import fail
from .base import Checkpoint
from .embedded import embedded_model_path
from .spec import ModelSpec, RopeScaling

__all__ = ["Checkpoint", "ModelSpec", "RopeScaling", "open_checkpoint", "embedded_model_path"]


def open_checkpoint(path: str | Path | None = None) -> Checkpoint:
    """Open the checkpoint at `path` (a folder or a .gguf file); None opens the embedded default model."""
    path = embedded_model_path() if path is None else Path(path)
    if not path.exists():
        raise fail(path, "no such file or folder")
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            from .gguf_reader import GGUFCheckpoint

            return GGUFCheckpoint(path)
        raise fail(path, "not a checkpoint: give a Hugging Face or Meta folder, or a .gguf file")
    if (path / "config.json").exists():
        from .hf import HFCheckpoint

        return HFCheckpoint(path)
    if (path / "params.json").exists():
        from .meta import MetaCheckpoint

        return MetaCheckpoint(path)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return open_checkpoint(ggufs[0])
    raise fail(path, "not a checkpoint folder: expected config.json (Hugging Face), params.json (Meta) or one .gguf file")
