"""A checkpoint held in memory: for tests and for models generated on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import fail
from .base import Checkpoint
from .spec import ModelSpec


class MemoryCheckpoint(Checkpoint):
    format = "memory"

    def __init__(self, spec: ModelSpec, tensors: dict[str, np.ndarray], path: Path = Path("<memory>")):
        self.spec = spec
        self.path = path
        self._tensors = tensors

    def tensor_names(self) -> list[str]:
        return list(self._tensors)

    def read(self, name: str) -> np.ndarray:
        if name not in self._tensors:
            raise fail(self.path, f"has no tensor {name}")
        return self._tensors[name]

    def fingerprint(self) -> str:
        import hashlib

        digest = hashlib.sha256()
        for name in sorted(self._tensors):
            digest.update(name.encode() + self._tensors[name].tobytes())
        return digest.hexdigest()

    def source_files(self) -> list[Path]:
        return []
