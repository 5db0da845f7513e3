"""Execution-provider targets: every difference between providers lives in this one table.

Adding a provider is one entry. The graph builder asks the target, never `if target == ...`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LlamaOrtError

PRECISIONS = ("fp32", "fp16", "int4")
LAYOUTS = ("merged", "single")


@dataclass(frozen=True)
class Target:
    name: str
    provider: str  # the onnxruntime execution provider
    default_layout: str  # merged: If(decoder | decoder_with_past), the seed's; single: one graph, no If
    precisions: tuple[str, ...]
    default_precision: str  # what --precision is when not given
    int4_activation: str  # activations around MatMulNBits: float32 or float16
    skip_simplified_layer_norm: bool = True  # com.microsoft.SkipSimplifiedLayerNormalization
    packed_qkv: bool = True  # one MatMul for Q, K and V
    packs_gate_up_at: tuple[str, ...] = PRECISIONS  # one MatMul for the MLP's gate and up, at these precisions
    # GroupQueryAttention reads total_sequence_length on the host. Derived from shapes alone (the prompt's
    # length, or max_seq_len for one token) it needs no device data, so a CUDA graph can capture the decode
    # step; but then a prompt must start on an empty cache. Derived from the mask, a prompt may extend one.
    shape_only_total_length: bool = False
    # Rotary inside GroupQueryAttention (do_rotary). DirectML's kernel ignores it: rotate Q and K with
    # com.microsoft.RotaryEmbedding first, which also needs Q, K and V as separate inputs.
    fused_rotary: bool = True
    opset: int = 21  # the default domain's; DirectML registers If up to version 19, so it gets 20
    # WebGPU has no 64-bit integers: token ids and the mask are int32 there, and with no shape arithmetic
    # left to the CPU either, the If condition comes from the device's own count of this step's tokens.
    index_dtype: str = "int64"
    host_shape_ops: bool = True
    # The merged layout's rotary inputs and outputs (the seed's contract: docs/model-format.md, "Rotary
    # embeddings"). Off for WebGPU, which keeps GroupQueryAttention's own rotary until the fed form passes
    # scripts/webgpu_check.py there (its one check ran before that script fed both sides the same tokens).
    rotary_io: bool = True
    # Quantized embedding tables through com.microsoft.GatherBlockQuantized (QuantOptions.embeddings). Checked
    # on the CPU provider only so far; the others keep the table in float.
    reads_quantized_tables: bool = False

    def check_precision(self, precision: str) -> None:
        if precision not in PRECISIONS:
            raise LlamaOrtError(f"--precision: unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        if precision not in self.precisions:
            raise LlamaOrtError(f"--precision: target {self.name} has no {precision} model; "
                                f"choose one of {', '.join(self.precisions)}")

    def is_graph_capturable(self, layout: str) -> bool:
        """Whether a CUDA graph can capture a decode step of this target's model in `layout`: one with no control
        flow (If) and no device data read on the host (shape_only_total_length)."""
        return layout == "single" and self.shape_only_total_length

    def activation_dtype(self, precision: str) -> str:
        """The float type of activations, the KV cache and the embeddings for this precision."""
        if precision == "fp32":
            return "float32"
        if precision == "fp16":
            return "float16"
        return self.int4_activation


# The CPU provider runs fp16 GroupQueryAttention and norms, but fp16 MatMul is slow there: fp16 on the
# CPU is for checking, int4 with float32 activations is for speed, and fp32 is the default.
TARGETS = {
    t.name: t
    for t in (
        # In fp32 packing gate and up saves nothing on the CPU (the matrix time is the same) and the Split it
        # needs costs about 2 % of a decode step; in int4 it saves one activation quantization per layer.
        Target("cpu", "CPUExecutionProvider", "single", PRECISIONS, "fp32", "float32",
               packs_gate_up_at=("fp16", "int4"), reads_quantized_tables=True),
        # CUDA graphs cannot capture control flow: the cuda model is a single graph used for prompt and decode.
        # Gate and up stay two GEMMs in float: the packed GEMM's Split costs more than packing saves
        # (docs/BENCHMARKS.md, "Gate and up as two GEMMs on the cuda target"); int4 stays packed, unmeasured.
        Target("cuda", "CUDAExecutionProvider", "single", PRECISIONS, "fp16", "float16",
               packs_gate_up_at=("int4",), shape_only_total_length=True),
        Target("dml", "DmlExecutionProvider", "merged", ("fp16", "int4", "fp32"), "fp16", "float16",
               fused_rotary=False, opset=20),
        Target("webgpu", "WebGpuExecutionProvider", "merged", ("fp16", "int4", "fp32"), "fp16", "float16",
               index_dtype="int32", host_shape_ops=False, rotary_io=False),
    )
}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise LlamaOrtError(f"--target: unknown target {name!r}; choose one of {', '.join(TARGETS)}") from None
