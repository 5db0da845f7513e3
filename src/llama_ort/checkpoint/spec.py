"""The model description every reader produces and every later stage consumes."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import InitVar, dataclass
from pathlib import Path

import numpy as np

from ..errors import fail

ARCHITECTURES = ("llama", "mistral")


@dataclass(frozen=True)
class RopeScaling:
    """Rotary frequency scaling. `kind` is "linear" or "llama3" (Llama 3.1's NTK-by-parts)."""

    kind: str
    factor: float
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192

    def scale_inv_freq(self, inv_freq: np.ndarray) -> np.ndarray:
        """Rotary inverse frequencies (one per pair of head dims) under this scaling, as transformers computes them."""
        if self.kind == "linear":
            return inv_freq / self.factor
        # llama3: wavelengths longer than the original context are stretched by `factor`, short ones kept,
        # and those in between blended smoothly.
        wavelen = 2 * np.pi / inv_freq
        long_wavelen = self.original_max_position_embeddings / self.low_freq_factor
        short_wavelen = self.original_max_position_embeddings / self.high_freq_factor
        smooth = (self.original_max_position_embeddings / wavelen - self.low_freq_factor) / (
            self.high_freq_factor - self.low_freq_factor)
        blended = (1 - smooth) * inv_freq / self.factor + smooth * inv_freq
        scaled = np.where(wavelen > long_wavelen, inv_freq / self.factor, inv_freq)
        return np.where((wavelen >= short_wavelen) & (wavelen <= long_wavelen), blended, scaled)


@dataclass(frozen=True)
class ModelSpec:
    """A Llama-family decoder: everything the graph needs besides the weights."""

    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    head_dim: int = 0  # 0: hidden_size // num_heads
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = False
    bos_token_id: int | None = 1
    eos_token_ids: tuple[int, ...] = (2,)
    context_length: int = 4096
    architecture: str = "llama"
    name: str = "model"
    where: InitVar[object] = "model config"  # the file the values came from, named by errors

    def __post_init__(self, where):
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden_size // max(self.num_heads, 1))
        self.check(where)

    def check(self, where: object = "model config") -> None:
        positive = ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "intermediate_size",
                    "vocab_size", "head_dim", "context_length")
        for name in positive:
            if getattr(self, name) <= 0:
                raise fail(where, f"{name} must be positive, got {getattr(self, name)}")
        if self.num_heads % self.num_kv_heads:
            raise fail(where, f"num_heads ({self.num_heads}) is not a multiple of num_kv_heads ({self.num_kv_heads})")
        if self.head_dim % 2:
            raise fail(where, f"head_dim must be even for rotary embeddings, got {self.head_dim}")
        if self.architecture not in ARCHITECTURES:
            raise fail(where, f"unknown architecture {self.architecture!r}; llama-ort reads {', '.join(ARCHITECTURES)}")

    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["eos_token_ids"] = list(self.eos_token_ids)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        d = dict(d)
        d.pop("extra", None)  # older manifests carry an always-empty "extra": still read them
        if d.get("rope_scaling"):
            d["rope_scaling"] = RopeScaling(**d["rope_scaling"])
        d["eos_token_ids"] = tuple(d.get("eos_token_ids", ()))
        return cls(**d)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> ModelSpec:
        return cls.from_dict(json.loads(path.read_text()))
