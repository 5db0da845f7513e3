"""A model folder loaded into an ONNX Runtime session on one provider's device.

Static mode fixes the cache length (max_seq_len) when the session is created, so the provider plans every
buffer once; dynamic mode leaves it free, and the runtime grows the cache as the text gets longer.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .. import model_format as io
from ..checkpoint.spec import ModelSpec
from ..errors import fail
from ..graph.target import TARGETS
from .providers import Provider, add_to_session, get_provider


INTEGER_TYPES = {"tensor(int64)": np.dtype(np.int64), "tensor(int32)": np.dtype(np.int32)}


@dataclass
class Model:
    folder: Path
    manifest: io.Manifest
    spec: ModelSpec
    session: ort.InferenceSession
    provider: Provider
    device_id: int
    max_seq_len: int | None  # static mode: the cache length fixed in the session; None: dynamic mode
    disable_metacommands: bool = False
    graph: bool = False  # decode steps captured once and replayed as CUDA graphs
    graphs_taken: int = 0

    def take_graph_ids(self, count: int) -> list[int]:
        """Fresh CUDA graph ids: a captured graph keeps the buffer addresses it was captured with, so each new
        set of buffers needs graphs of its own."""
        self.graphs_taken += count
        return list(range(self.graphs_taken - count + 1, self.graphs_taken + 1))

    @property
    def is_static(self) -> bool:
        return self.max_seq_len is not None

    @property
    def kv_dtype(self) -> np.dtype:
        return np.dtype(self.manifest.kv_dtype)

    @property
    def index_dtype(self) -> np.dtype:
        """Of input_ids and the attention masks: int64, or int32 where the device has no 64-bit integers."""
        return np.dtype(self.manifest.index_dtype)

    @property
    def next_token_dtype(self) -> np.dtype:
        [output] = [o for o in self.session.get_outputs() if o.name == io.NEXT_TOKEN]
        return INTEGER_TYPES[output.type]

    def allocate(self, shape: tuple[int, ...], dtype, on_host: bool = False) -> ort.OrtValue:
        """An uninitialized buffer on the session's device (or in host memory)."""
        if on_host:
            return ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, "cpu")
        if self.provider.allocates_through_session:
            return self.session.create_ortvalue_from_shape_and_type(shape, dtype, self.provider.device_type,
                                                                    self.device_id)
        return ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, self.provider.device_type, self.device_id)

    def run_bound(self, binding: ort.IOBinding, graph_id: int | None = None) -> None:
        """Run the session on `binding` and wait for its outputs. With CUDA graphs, graph_id names the graph the
        step is captured as (then replayed); None runs it uncaptured (a prompt, whose shape changes)."""
        options = None
        if self.graph:
            options = ort.RunOptions()
            options.add_run_config_entry("gpu_graph_id", str(graph_id) if graph_id is not None else "-1")
        self.session.run_with_iobinding(binding, options)
        binding.synchronize_outputs()

    def sibling_session(self, model: bytes) -> ort.InferenceSession:
        """Another session on the same provider and device, whose buffers this model's can be bound to."""
        return create_session(model, self.provider, self.device_id, self.disable_metacommands)


def create_session(model: str | bytes, provider: Provider, device_id: int, disable_metacommands: bool,
                   max_seq_len: int | None = None, graph: bool = False, threads: int | None = None,
                   environment: tuple[tuple[str, str], ...] = (),
                   external_data_folder: Path | None = None) -> ort.InferenceSession:
    """`environment`: variables set while the session is created, where its kernels read them (a value the user
    set wins), and restored after. `external_data_folder`: where the weights of a model given as bytes lie."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT warns about every node it leaves on the CPU
    if external_data_folder is not None:
        options.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                         str(external_data_folder))
    if threads:
        options.intra_op_num_threads = threads
    if max_seq_len is not None:
        options.add_free_dimension_override_by_name(io.MAX_SEQ_LEN, max_seq_len)
    providers = add_to_session(provider, options, device_id, disable_metacommands, graph)
    with scoped_environment(dict(environment)):
        return ort.InferenceSession(model, options, providers=providers)


@contextlib.contextmanager
def scoped_environment(variables: dict[str, str]):
    """Set the variables the user has not set, for the duration of the block."""
    added = {name: value for name, value in variables.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def load_model(folder: str | Path, provider: str = "cpu", *, max_seq_len: int | None = None, device_id: int = 0,
               disable_metacommands: bool = False, graph: bool = False, threads: int | None = None,
               every_position: bool = False) -> Model:
    """Load the model folder written by `llama-ort optimize` onto `provider`'s device number `device_id`.

    max_seq_len (static mode) is capped at the model's context length: no position beyond it has a rotary
    embedding. None selects dynamic mode. graph captures each decode step as a CUDA graph (cuda, static mode,
    a model built for the cuda target). threads sets the CPU provider's thread count (default: one a core).
    every_position loads it for scoring text: its logits are every fed position's, [batch * seq_len, vocab]
    (a model built without --all-logits is rewritten as it loads: graph/every_position.py).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise fail(folder, "no such model folder: build one with `llama-ort optimize`")
    manifest = io.Manifest.load(folder)
    spec = ModelSpec.from_dict(manifest.spec)
    if not every_position:
        check_generates(manifest, folder)
    model_path = folder / manifest.model_file
    if not model_path.exists():
        raise fail(model_path, "missing from the model folder: rebuild it with `llama-ort optimize`")
    if max_seq_len is not None:
        if max_seq_len < 1:
            raise fail("max_seq_len", f"must be positive, got {max_seq_len}")
        max_seq_len = min(max_seq_len, spec.context_length)

    target = get_provider(provider)
    if graph:
        check_graph_capture(target, manifest, max_seq_len)
    environment = target.one_kv_head_per_query_environment if spec.num_heads == spec.num_kv_heads else ()
    try:
        model = str(model_path)
        if every_position and not manifest.all_logits:
            from ..graph.every_position import every_position_model  # onnx: imported only where needed

            model = every_position_model(model_path)
        session = create_session(model, target, device_id, disable_metacommands, max_seq_len, graph, threads,
                                 environment, external_data_folder=folder)
    except Exception as e:
        if type(e).__module__ != ort.capi.onnxruntime_pybind11_state.__name__:
            raise
        # onnxruntime's own error types: most often a damaged or incomplete model file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise fail(model_path, f"onnxruntime cannot load it ({reason}); if the folder's files are damaged or "
                               "incomplete, rebuild it with `llama-ort optimize`") from None
    return Model(folder, manifest, spec, session, target, device_id, max_seq_len, disable_metacommands, graph)


def check_graph_capture(provider: Provider, manifest: io.Manifest, max_seq_len: int | None) -> None:
    if not provider.captures_graphs:
        raise fail("--cuda-graph", f"the {provider.name} provider captures no CUDA graphs: use --provider cuda")
    if max_seq_len is None:
        raise fail("--cuda-graph", "a captured graph keeps its buffers: give a fixed --max-seq-len (static mode)")
    built_for = TARGETS.get(manifest.target)
    if built_for is None or not built_for.is_graph_capturable(manifest.layout):
        capturable = [t.name for t in TARGETS.values() if t.is_graph_capturable(t.default_layout)]
        raise fail("--cuda-graph", f"a CUDA graph cannot capture a model built for {manifest.target} in the "
                                   f"{manifest.layout} layout: build it with --target {' or '.join(capturable)} "
                                   "and its default layout")


def check_generates(manifest: io.Manifest, folder: Path) -> None:
    """The runtime needs one row of logits per sequence and the on-device argmax."""
    if manifest.all_logits:
        raise fail(folder, "was built with --all-logits (for scoring, not generation): rebuild it without")
    if not manifest.has_next_token:
        raise fail(folder, "has no next_token output: rebuild it with this version of `llama-ort optimize`")
