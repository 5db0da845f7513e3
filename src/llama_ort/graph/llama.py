"""The Llama decoder as one ONNX model with a static, in-place KV cache.

Layouts: "merged" is the seed's: an If node picks `decoder` (any sequence length, for the prompt) or
`decoder_with_past` (one token), both reading the same initializers. "single" is one graph for both, for
providers that capture it whole (CUDA graphs cannot capture control flow). docs/model-format.md has the
inputs and outputs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from .. import model_format as io
from ..checkpoint import names
from ..checkpoint.base import Checkpoint
from ..checkpoint.spec import ModelSpec
from ..errors import LlamaOrtError
from ..quant.int4 import BLOCK_SIZES
from ..quant.options import EMBEDDING_FORMS
from .blocks import AttentionState, attention, mlp, residual_rms_norm, rms_norm
from .builder import GraphBuilder, WeightStore, make_model, tensor_type
from .rope import cos_sin_tables
from .target import LAYOUTS, Target, get_target
from .weights import LM_HEAD_OUTPUT, QuantOptions, Weights

MODEL_FILES = {"merged": "decoder_model_merged.onnx", "single": "decoder_model.onnx"}


@dataclass(frozen=True)
class BuildOptions:
    target: str = "cpu"
    precision: str = "fp32"
    layout: str | None = None  # None: the target's default
    quant: QuantOptions = field(default_factory=QuantOptions)
    all_logits: bool = False  # logits for every position, not only each row's last
    num_layers: int | None = None  # build only the first N layers (debugging)

    def resolved(self) -> BuildOptions:
        target = get_target(self.target)
        target.check_precision(self.precision)
        layout = self.layout or target.default_layout
        if layout not in LAYOUTS:
            raise LlamaOrtError(f"--layout: unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        if self.quant.block_size not in BLOCK_SIZES:
            raise LlamaOrtError(f"--block-size: {self.quant.block_size} is not one of "
                                f"{', '.join(map(str, BLOCK_SIZES))}")
        if self.quant.embeddings not in EMBEDDING_FORMS:
            raise LlamaOrtError(f"--embeddings: unknown form {self.quant.embeddings!r}; choose one of "
                                f"{', '.join(EMBEDDING_FORMS)}")
        if self.quant.embeddings == "int4" and not self.quant.symmetric:
            raise LlamaOrtError("--embeddings int4 reads symmetric blocks only (GatherBlockQuantized takes integer "
                                "zero points): drop --zero-points, or use --embeddings int8")
        return dataclasses.replace(self, layout=layout)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def decoder(b: GraphBuilder, w: Weights, target: Target, spec: ModelSpec, input_ids: str, state: AttentionState,
            present: list[tuple[str, str]], *, is_decode: bool, all_logits: bool) -> tuple[str, str]:
    """The forward pass: embeddings, layers, final norm, lm_head. Returns (logits, next_token)."""
    eps = spec.rms_norm_eps
    h = w.embedding(b, input_ids)  # [B, S, H]
    x = rms_norm(b, w, h, names.layer(0, "input_layernorm.weight"), eps)
    for i in range(spec.num_layers):
        with b.scope(f"layers.{i}"):
            a = attention(b, w, target, spec, i, x, io.past_key(i), io.past_value(i), state, *present[i])
            x, h = residual_rms_norm(b, w, target, a, h, names.layer(i, "post_attention_layernorm.weight"), eps)
            m = mlp(b, w, target, i, x)
            next_norm = names.layer(i + 1, "input_layernorm.weight") if i + 1 < spec.num_layers else names.FINAL_NORM
            x, h = residual_rms_norm(b, w, target, m, h, next_norm, eps)
    with b.scope("head"):
        x = x if all_logits else last_positions(b, x, state, spec, is_decode)
        logits = lm_head(b, w, spec, x, all_logits)
        if w.dtype != np.float32:
            logits = b.op("Cast", logits, to=TensorProto.FLOAT, name="logits_fp32")
        next_token = b.op("ArgMax", logits, axis=-1, keepdims=0, name="argmax")
    return logits, next_token


def last_positions(b: GraphBuilder, x: str, state: AttentionState, spec: ModelSpec, is_decode: bool) -> str:
    """[B, S, H] -> [B, H]: each row's last real token (rows of a prompt batch are right-padded). The names
    "last" and "last_hidden" are how graph/every_position.py finds this to turn it to every position."""
    if not is_decode:
        # Row b's last token sits at seqlens_k[b] in a first prompt, and at S-1 when the prompt extends a cache
        # or is one token.
        index_type = tensor_type(b.index_dtype)
        last = b.op("Min", b.op("Cast", state.seqlens_k, to=index_type),
                    b.op("Sub", state.step_tokens, b.const(1, b.index_dtype)))
        index = b.op("Expand", b.op("Reshape", last, b.const([-1, 1, 1])), b.const([1, 1, spec.hidden_size]))
        x = b.op("GatherElements", x, index, axis=1, name="last")  # [B, 1, H]
    return b.op("Squeeze", x, b.const([1]), name="last_hidden")


def lm_head(b: GraphBuilder, w: Weights, spec: ModelSpec, x: str, all_logits: bool) -> str:
    """[B, H] -> [B, vocab], or [B, S, H] -> [B, S, vocab] with all_logits."""
    weight = names.EMBED if spec.tie_word_embeddings else names.LM_HEAD
    if w.precision == "int4" and w.quant.quantize_lm_head:
        return w.linear(b, x, [weight], LM_HEAD_OUTPUT)
    # Gemm with transB reads the [vocab, H] table as stored, shared with the embeddings when tied.
    table = w.vector(b, weight)
    if not all_logits:
        return b.op("Gemm", x, table, transB=1, name=LM_HEAD_OUTPUT)
    flat = b.op("Reshape", x, b.const([-1, spec.hidden_size]))
    logits = b.op("Gemm", flat, table, transB=1, name=LM_HEAD_OUTPUT)
    shape = b.op("Concat", b.op("Shape", x, start=0, end=-1), b.const([spec.vocab_size]), axis=0)
    return b.op("Reshape", logits, shape, name="logits")


def attention_state(b: GraphBuilder, spec: ModelSpec, target: Target, input_ids: str, mask: str, dtype: np.dtype,
                    rotary_inputs: tuple[str, str] | None) -> tuple[AttentionState, dict[str, str]]:
    """Sequence lengths and rotary embeddings for every layer, and the step's outputs for the next step by name:
    the attention mask, and with rotary_inputs (the step's cos and sin) the next position's cos and sin."""
    index = b.index_dtype
    lens = b.op("ReduceSum", mask, b.const([1]), keepdims=0, name="lengths")  # [B]
    seqlens_k = b.op("Cast", b.op("Sub", lens, b.const(1, index)), to=TensorProto.INT32, name="seqlens_k")
    # Tokens fed this step, counted from device data (token ids are >= 0): a value from Shape lives on the
    # host, and copying it to the device would stop CUDA graph capture.
    is_token = b.op("Cast", b.op("GreaterOrEqual", input_ids, b.const(0, index)), to=tensor_type(index))
    step_tokens = b.op("ReduceSum", is_token, b.const([1]), keepdims=0, name="step_tokens")  # [B]
    if target.shape_only_total_length:
        max_seq_len = b.op("Squeeze", b.op("Shape", mask, start=1, end=2), name="max_seq_len")
        seq_len = b.op("Squeeze", b.op("Shape", input_ids, start=1, end=2), name="seq_len")
        is_token = b.op("Equal", seq_len, b.const(1))
        total = b.op("Where", is_token, max_seq_len, seq_len)
    else:
        total = b.op("ReduceMax", lens, keepdims=0)
    total = b.op("Cast", total, to=TensorProto.INT32, name="total_sequence_length")
    cos, sin = cos_sin_tables(spec, spec.context_length, dtype)
    cos_table, sin_table = b.weights.add("rotary.cos_cache", cos), b.weights.add("rotary.sin_cache", sin)
    rotary, factors, position_ids = "fused" if target.fused_rotary else "op", (cos_table, sin_table), None
    if rotary_inputs:
        rotary, (cos_in, sin_in) = "fed", rotary_inputs
        factors = [b.op("Unsqueeze", b.op("Concat", first, second, axis=-1), b.const([2]), name=name)
                   for first, second, name in ((cos_in, cos_in, "step_cos"),
                                               (b.op("Neg", sin_in), sin_in, "step_sin"))]  # [B, S, 1, D]
    elif rotary == "op":
        # positions of this step's tokens: past + 0..S-1, with past = max(lengths - S, 0) (0 for a padded prompt)
        seq_len = b.op("Squeeze", b.op("Shape", input_ids, start=1, end=2))
        past = b.op("Max", b.op("Sub", lens, b.op("Cast", seq_len, to=tensor_type(index))), b.const(0, index))
        steps = b.op("Unsqueeze", b.op("Range", b.const(0), seq_len, b.const(1)), b.const([0]))  # [1, S]
        position_ids = b.op("Add", b.op("Cast", b.op("Unsqueeze", past, b.const([1])), to=TensorProto.INT64), steps,
                            name="position_ids")  # [B, S]
    state = AttentionState(input_ids, step_tokens, seqlens_k, total, rotary, *factors, position_ids)
    # A row's ones are contiguous from 0, so the next step's mask is the mask OR itself shifted right by one:
    # one more position per row, computed on the device from device data alone (in float: WebGPU slices
    # no integers).
    ones = b.op("Cast", mask, to=TensorProto.FLOAT)
    first = b.op("Slice", ones, b.const([0]), b.const([1]), b.const([1]))
    shifted = b.op("Concat", first, b.op("Slice", ones, b.const([0]), b.const([-1]), b.const([1])), axis=1)
    next_mask = b.op("Cast", b.op("Max", ones, shifted), to=tensor_type(b.index_dtype), name="next_mask")
    outputs = {io.NEXT_ATTENTION_MASK: next_mask}
    if rotary_inputs:
        # Each row's next token sits at position lens (clamped: a full cache has no next step).
        next_position = b.op("Min", lens, b.const([spec.context_length - 1], index))
        for output, table in ((io.NEXT_COS, cos_table), (io.NEXT_SIN, sin_table)):
            outputs[output] = b.op("Unsqueeze", b.op("Gather", table, next_position), b.const([1]), name=f"step_{output}")
    return state, outputs


def build_model(checkpoint: Checkpoint, folder: Path, options: BuildOptions, on_read=None) -> io.Manifest:
    """Write the model, its external data and the manifest into `folder` (which must exist)."""
    options = options.resolved()
    target = get_target(options.target)
    spec = checkpoint.spec
    if options.num_layers:
        if not 1 <= options.num_layers <= spec.num_layers:
            raise LlamaOrtError(f"--num-layers: {options.num_layers} is not between 1 and the checkpoint's "
                                f"{spec.num_layers} layers")
        spec = dataclasses.replace(spec, num_layers=options.num_layers)
    dtype = np.dtype(target.activation_dtype(options.precision))
    model_file = MODEL_FILES[options.layout]
    weights = Weights(checkpoint, spec, options.precision, dtype.name, options.quant, on_read,
                      reads_quantized_tables=target.reads_quantized_tables)
    store = WeightStore(folder / (model_file + ".data"), model_file + ".data")
    try:
        b = GraphBuilder("llama", store, index_dtype=target.index_dtype)
        index = np.dtype(target.index_dtype)
        input_ids = b.input(io.INPUT_IDS, index, [io.BATCH, io.SEQ_LEN])
        mask = b.input(io.ATTENTION_MASK, index, [io.BATCH, io.MAX_SEQ_LEN])
        cache_shape = [io.BATCH, spec.num_kv_heads, io.MAX_SEQ_LEN, spec.head_dim]
        for i in range(spec.num_layers):
            b.input(io.past_key(i), dtype, cache_shape)
            b.input(io.past_value(i), dtype, cache_shape)
        rotary_inputs = None
        if options.layout == "merged" and target.rotary_io:  # the seed's model: rotary in and out of every step
            rotary_shape = [io.BATCH, io.SEQ_LEN, spec.head_dim // 2]
            rotary_inputs = (b.input(io.COS, dtype, rotary_shape), b.input(io.SIN, dtype, rotary_shape))
        state, step_outputs = attention_state(b, spec, target, input_ids, mask, dtype, rotary_inputs)

        outputs = [io.LOGITS, io.NEXT_TOKEN] + [n for i in range(spec.num_layers)
                                                 for n in (io.present_key(i), io.present_value(i))]
        if options.layout == "single":
            present = [(io.present_key(i), io.present_value(i)) for i in range(spec.num_layers)]
            logits, next_token = decoder(b, weights, target, spec, input_ids, state, present,
                                         is_decode=False, all_logits=options.all_logits)
            b.op("Identity", logits, outputs=[io.LOGITS])
            b.op("Identity", next_token, outputs=[io.NEXT_TOKEN])
        else:
            branches = [branch(store, weights, target, spec, input_ids, state, name, options.all_logits)
                        for name in ("decoder", "decoder_with_past")]
            if target.host_shape_ops:
                seq_len = b.op("Shape", input_ids, start=1, end=2)
            else:
                seq_len = b.op("ReduceMax", state.step_tokens, keepdims=1)  # [1]
            is_prompt = b.op("Greater", seq_len, b.const([1], seq_len_dtype(target)), name="is_prompt")
            b.op("If", is_prompt, outputs=outputs, name="decoder_or_decoder_with_past",
                 then_branch=branches[0], else_branch=branches[1])
        for name, value in step_outputs.items():
            b.op("Identity", value, outputs=[name])

        logits_shape = [io.BATCH, io.SEQ_LEN, spec.vocab_size] if options.all_logits else [io.BATCH, spec.vocab_size]
        b.output(io.LOGITS, np.float32, logits_shape)
        b.output(io.NEXT_TOKEN, np.int64, [io.BATCH, io.SEQ_LEN] if options.all_logits else [io.BATCH])
        b.output(io.NEXT_ATTENTION_MASK, index, [io.BATCH, io.MAX_SEQ_LEN])
        if rotary_inputs:
            for name in (io.NEXT_COS, io.NEXT_SIN):
                b.output(name, dtype, [io.BATCH, 1, spec.head_dim // 2])
        for i in range(spec.num_layers):
            b.output(io.present_key(i), dtype, cache_shape)
            b.output(io.present_value(i), dtype, cache_shape)
    finally:
        store.close()

    manifest = io.Manifest(model_file=model_file, target=options.target, precision=options.precision,
                           layout=options.layout, spec=spec.to_dict(), kv_dtype=dtype.name,
                           index_dtype=index.name, rotary_io=rotary_inputs is not None,
                           all_logits=options.all_logits,
                           quantization=quantization(options, weights))
    model = make_model(b.graph(store.initializers), {"llama_ort.spec": json.dumps(spec.to_dict()),
                                                     "llama_ort.layout": options.layout}, opset=target.opset)
    onnx.save_model(model, folder / model_file)
    manifest.save(folder)
    return manifest


def quantization(options: BuildOptions, weights: Weights) -> dict:
    """The manifest's record of the int4 options as applied (the target decides about the embeddings), and how
    many weights were the checkpoint's own 4-bit blocks rather than quantized here."""
    if options.precision != "int4":
        return {}
    return options.quant.to_dict() | {"embeddings": weights.embedding_form,
                                      "weights_kept_as_stored": weights.kept_as_stored}


def seq_len_dtype(target: Target) -> np.dtype:
    return np.dtype(np.int64 if target.host_shape_ops else target.index_dtype)


def branch(store: WeightStore, weights: Weights, target: Target, spec: ModelSpec, input_ids: str,
           state: AttentionState, name: str, all_logits: bool) -> onnx.GraphProto:
    """One If branch; it reads the outer graph's inputs and initializers."""
    b = GraphBuilder(name, store, prefix=name + "/", index_dtype=target.index_dtype)
    is_decode = name == "decoder_with_past"
    if is_decode:  # a static [B, 1] shape, so providers can compile this branch once
        input_ids = b.op("Reshape", input_ids, b.const([-1, 1]), name="input_ids")
    present = [(b.value_name(f"present_key.{i}"), b.value_name(f"present_value.{i}")) for i in range(spec.num_layers)]
    logits, next_token = decoder(b, weights, target, spec, input_ids, state, present,
                                 is_decode=is_decode, all_logits=all_logits)
    b.output(logits, np.float32)
    b.output(next_token, np.int64)
    for key, value in present:
        b.output(key, weights.dtype)
        b.output(value, weights.dtype)
    return b.graph()
