"""The server's engine on llama_ort.runtime: the model loaded with a static cache of max_seq_len positions a
row, and a continuous-batching engine (llama_ort.runtime.engine) of max_rows slots for each batch opened."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import onnxruntime as ort

from ..errors import fail
from ..runtime import Model, load_model
from ..runtime.engine import Engine, EngineConfig
from ..runtime.slots import SlotCache
from ..tokenizer import Tokenizer

log = logging.getLogger("llama_ort.serve")

MAX_SEQ_LEN = 2048  # tokens of one request, prompt and answer: a slot's length
PREFILL_CHUNK = 256  # prompt tokens run between two decode steps


def load_engine(folder: str | Path, provider: str = "cpu", max_seq_len: int = MAX_SEQ_LEN, device_id: int = 0, *,
                prefill_chunk: int = PREFILL_CHUNK, graph: bool = False, batch_invariant: bool = True) -> RuntimeEngine:
    """The model folder on `provider`'s device number `device_id`, named by its folder. A row holds at most
    max_seq_len tokens (capped at the model's context length). graph: decode steps replayed as CUDA graphs.
    batch_invariant: EngineConfig's."""
    if max_seq_len < 2:
        raise fail("max_seq_len", f"must be at least 2 (a prompt token and an answer token), got {max_seq_len}")
    folder = Path(folder)
    model = load_model(folder, provider, max_seq_len=max_seq_len, device_id=device_id, graph=graph)
    config = EngineConfig(prefill_chunk=prefill_chunk, batch_invariant=batch_invariant)
    return RuntimeEngine(model, Tokenizer.from_folder(folder), folder.name, config)


class RuntimeEngine:
    def __init__(self, model: Model, tokenizer: Tokenizer, name: str, config: EngineConfig = EngineConfig()):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.config = config
        self.max_seq_len = model.max_seq_len

    def encode_chat(self, messages: list[dict]) -> list[int]:
        return self.tokenizer.encode_chat(messages)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def cache_bytes(self, slots: int) -> int:
        return SlotCache.bytes_needed(self.model, slots, self.max_seq_len)

    def open_batch(self, max_rows: int) -> Engine:
        """An engine of max_rows slots, its KV cache allocated now; one line if it does not fit."""
        size = self.cache_bytes(max_rows)
        log.info("KV cache: %d slots of %d positions, %.2f GB", max_rows, self.max_seq_len, size / 1e9)
        available = available_memory_bytes() if self.model.provider.device_type == "cpu" else None
        if available is not None and size > available:
            raise too_big(max_rows, self.max_seq_len, size, f"{available / 1e9:.2f} GB of memory is available")
        try:
            return Engine(self.model, self.tokenizer, replace(self.config, slots=max_rows))
        except Exception as e:
            if type(e).__module__ != ort.capi.onnxruntime_pybind11_state.__name__:
                raise
            raise too_big(max_rows, self.max_seq_len, size, str(e).strip().splitlines()[0]) from None


def too_big(slots: int, max_seq_len: int, size: int, why: str):
    return fail("--max-batch-size", f"a KV cache of {slots} slots of {max_seq_len} positions takes "
                                    f"{size / 1e9:.2f} GB, and {why}: lower --max-batch-size or --max-seq-len")


def available_memory_bytes() -> int | None:
    """MemAvailable of /proc/meminfo (Linux); None where there is none."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
