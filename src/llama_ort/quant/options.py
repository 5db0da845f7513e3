"""The int4 build's options, apart from the graph code, so that the command line can offer them without
importing onnx (0.8 s of every command's start: onnx imports ml_dtypes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class QuantOptions:
    block_size: int = 32
    # Symmetric blocks run fastest everywhere. Min/max blocks with float zero points (symmetric=False) are
    # lossless on GGUF Q4_1 sources and closer on others, but the CPU provider has no fast kernel for them.
    symmetric: bool = True
    accuracy_level: int = 4  # MatMulNBits: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 activations (CPU)
    quantize_lm_head: bool = True
    # The embedding table of an int4 model, where the target reads quantized tables (GatherBlockQuantized):
    # "int8" blocks (near float, a quarter of fp32's bytes), "int4" blocks (shared with a quantized tied lm_head:
    # smallest, but it changed a greedy answer of the embedded model), or "float".
    embeddings: str = "int8"

    def to_dict(self) -> dict:
        return asdict(self)


EMBEDDING_FORMS = ("float", "int8", "int4")
