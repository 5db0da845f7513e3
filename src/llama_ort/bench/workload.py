"""The workload every peer runs: batch sizes, prompt lengths, new tokens, repeats, threads, device.

Every peer gets the same seeded random prompts (token ids, no tokenizer), decodes greedily and ignores EOS,
so all of them do the same work: `new_tokens` forward passes after the prompt's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import fail

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Workload:
    batch_sizes: tuple[int, ...] = (1, 4, 16)
    prompt_lengths: tuple[int, ...] = (128, 2048)
    new_tokens: int = 256
    repeats: int = 3  # timed runs per cell in each round; the report gives the median over all rounds
    rounds: int = 1  # each round runs every variant's worker once, in turn (see harness.run_bench)
    warmup: int = 1  # untimed runs per cell first: allocations, kernel selection, caches
    threads: int | None = None  # CPU threads for every peer; None: each library's default
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self):
        if self.device not in DEVICES:
            raise fail("--device", f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.new_tokens < 2:
            raise fail("--new-tokens", f"must be at least 2 (decode is timed after the first token), "
                                       f"got {self.new_tokens}")
        for name in ("repeats", "rounds", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise fail(f"--{name}", f"must be at least 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise fail("--warmup", f"must not be negative, got {self.warmup}")
        for name in ("batch_sizes", "prompt_lengths"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise fail(f"--{name.replace('_', '-')}", f"give positive integers, got {values}")

    def cells(self) -> list[tuple[int, int]]:
        """(batch, prompt length) pairs, in the order they run."""
        return [(b, p) for b in self.batch_sizes for p in self.prompt_lengths]

    def max_seq_len(self) -> int:
        """Cache positions a peer needs: the longest prompt and every new token."""
        return max(self.prompt_lengths) + self.new_tokens

    def prompts(self, batch: int, length: int, vocab_size: int) -> list[list[int]]:
        """`batch` prompts of `length` token ids, drawn away from the low ids where special tokens live."""
        rng = np.random.default_rng([self.seed, batch, length])
        low = min(100, vocab_size // 2)
        return rng.integers(low, vocab_size, (batch, length)).tolist()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Workload:
        return cls(**{**d, "batch_sizes": tuple(d["batch_sizes"]), "prompt_lengths": tuple(d["prompt_lengths"])})
