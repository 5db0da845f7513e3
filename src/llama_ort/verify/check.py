"""The verify pass: the built model's logits for a short prompt against the numpy forward pass."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from .. import model_format as io
from ..checkpoint.base import Checkpoint, non_finite_count
from ..checkpoint.spec import ModelSpec
from ..errors import LlamaOrtError, fail
from ..graph.rope import prompt_rotary_feeds
from .numpy_llama import last_logits

PROMPT_LENGTH = 8
# Smallest cosine similarity between the built model's logits and the float64 reference.
MIN_COSINE = {"fp32": 0.99999, "fp16": 0.999, "int4": 0.95}


def prompt_ids(spec: ModelSpec, seed: int = 0) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, spec.vocab_size, PROMPT_LENGTH)]


def prompt_logits(folder, ids: list[int]) -> np.ndarray:
    """Run the built model once on the CPU provider over `ids`, on an empty cache of exactly that length.

    Returns its logits output: [vocab] for the last token, or [len(ids), vocab] if built with all_logits.
    """
    manifest = io.Manifest.load(folder)
    spec = ModelSpec.from_dict(manifest.spec)
    options = ort.SessionOptions()
    options.add_free_dimension_override_by_name(io.MAX_SEQ_LEN, len(ids))
    session = ort.InferenceSession(str(folder / manifest.model_file), options, providers=["CPUExecutionProvider"])
    cache = np.zeros((1, spec.num_kv_heads, len(ids), spec.head_dim), manifest.kv_dtype)
    index = np.dtype(manifest.index_dtype)
    feeds = {io.INPUT_IDS: np.array([ids], index), io.ATTENTION_MASK: np.ones((1, len(ids)), index)}
    for i in range(spec.num_layers):
        feeds[io.past_key(i)] = feeds[io.past_value(i)] = cache
    if manifest.rotary_io:
        feeds.update(prompt_rotary_feeds(spec, [len(ids)], [len(ids)], manifest.kv_dtype))
    return session.run([io.LOGITS], feeds)[0][0]


def compare(checkpoint: Checkpoint, folder, seed: int = 0, on_read=None) -> dict:
    """The built model's last-token logits for one random prompt against the float64 numpy forward pass.
    `on_read(name, nbytes)` is called once the model has run, then as the reference reads each tensor.
    Fails if a figure is not finite: NaN would pass any bound, and such a model generates nothing."""
    manifest = io.Manifest.load(folder)
    built = ModelSpec.from_dict(manifest.spec)
    if any(getattr(built, f) != getattr(checkpoint.spec, f) for f in ("hidden_size", "num_heads", "num_kv_heads",
                                                                      "vocab_size")):
        raise LlamaOrtError(f"{folder}: was not built from {checkpoint.path} (hidden size, heads or vocabulary "
                            f"differ): give the checkpoint it was built from")
    ids = prompt_ids(checkpoint.spec, seed)
    logits = prompt_logits(folder, ids).astype(np.float64)
    actual = logits[-1] if manifest.all_logits else logits
    if not np.isfinite(actual).all():
        remedy = ("its float16 activations may overflow: build it with --precision fp32" if manifest.kv_dtype ==
                  "float16" else "please report it")
        raise fail("verify", f"the built {manifest.precision} model gives {non_finite_count(actual)} among its "
                             f"logits for prompt {ids}, so it would generate nothing; {remedy}")
    if on_read:
        on_read(manifest.model_file, 0)  # the model has run; the reference reads the checkpoint next
    expected = last_logits(checkpoint, ids, num_layers=manifest.spec["num_layers"], on_read=on_read)
    cosine = float(actual @ expected / (np.linalg.norm(actual) * np.linalg.norm(expected)))
    max_abs_diff = float(np.abs(actual - expected).max())
    if not (np.isfinite(cosine) and np.isfinite(max_abs_diff)):
        raise fail("verify", f"cosine {cosine} and max |Δlogit| {max_abs_diff} against the reference for prompt "
                             f"{ids} are not both finite (logits all zero, or a reference that overflows): please "
                             "report it")
    return {"prompt_ids": ids, "max_abs_diff": max_abs_diff, "cosine": cosine,
            "same_argmax": bool(actual.argmax() == expected.argmax()), "precision": manifest.precision}


def verify_model(checkpoint: Checkpoint, folder, on_read=None) -> dict:
    """A report of how close the built model is to the reference; raises if it is too far."""
    report = compare(checkpoint, folder, on_read=on_read)
    cosine, precision = report["cosine"], report["precision"]
    if cosine < MIN_COSINE[precision]:
        raise LlamaOrtError(f"verify: the built {precision} model disagrees with the checkpoint "
                            f"(cosine {cosine:.5f} < {MIN_COSINE[precision]}); this is a bug: please report it")
    return report
