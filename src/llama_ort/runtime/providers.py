"""Execution providers for running a model: every difference between them lives in the PROVIDERS table.

A provider is found in the installed onnxruntime (cpu, cuda, dml) or registered at run time from its
plugin package (webgpu); when it is missing, the error names what to install.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import onnxruntime as ort

from ..errors import LlamaOrtError


@dataclass(frozen=True)
class Provider:
    name: str  # what users type: --provider cpu
    ep: str  # the onnxruntime execution provider
    device_type: str  # where OrtValues for this provider live: OrtValue.ortvalue_from_shape_and_type(device_type=)
    install: str  # the one line that makes the provider available
    plugin: str | None = None  # the Python package of a plugin EP, registered at run time
    # The token ids must live where a raw pointer reaches them, since input_ids is bound by address to the buffer
    # the step before wrote its next_token into. WebGPU buffers are opaque handles: there next_token is bound to
    # host memory, and the ids go up through a host input_ids buffer that onnxruntime copies when it is bound.
    tokens_on_device: bool = True
    # A buffer's address plus an offset is an address in that buffer, so a tensor can be bound to part of one:
    # the serving engine binds slot ranges of its KV cache this way. DirectML and WebGPU addresses are opaque
    # handles, so there the engine has one slot.
    binds_at_offsets: bool = False
    # Precisions whose matrix products take another path for one row than for several, so that a row's numbers
    # depend on whether it is alone in its step: the serving engine then never decodes one row (docs/serve.md,
    # batch invariance). CPU: MatMulNBits (int4) has a one-row path, and its rows agree bit for bit for every
    # count from two up; float32 MatMul agrees for every count from one. Not measured on the GPU providers.
    one_row_paths: tuple[str, ...] = ()
    # Sessionless device buffers come from a shared allocator; WebGPU ones must come from a session (and are
    # then usable by every session on the same WebGPU context).
    allocates_through_session: bool = False
    # DirectML supports neither memory patterns nor parallel execution.
    needs_sequential_plan: bool = False
    takes_device_id: bool = True  # a "device_id" provider option (a plugin's device is picked from its list instead)
    has_metacommands: bool = False  # DirectML's "disable_metacommands" option
    captures_graphs: bool = False  # "enable_cuda_graph": a decode step replayed as one CUDA graph
    # Environment variables that onnxruntime's kernels read when a session is created, for a model whose every
    # query head has its own KV head (Llama 2 7B/13B). CUDA: GroupQueryAttention's decoding kernel, XQA, is made
    # for groups of query heads; with groups of one, its flash-decoding path decoded the 7B shape 3 % faster at
    # batch 1 and 6 % at batch 16 on an H100 (docs/BENCHMARKS.md).
    one_kv_head_per_query_environment: tuple[tuple[str, str], ...] = ()
    base_options: tuple[tuple[str, str], ...] = ()

    def ep_options(self, device_id: int, disable_metacommands: bool, graph: bool = False) -> dict[str, str]:
        options = dict(self.base_options)
        if graph:
            options["enable_cuda_graph"] = "1"
        if self.takes_device_id:
            options["device_id"] = str(device_id)
        if self.has_metacommands:
            options["disable_metacommands"] = str(disable_metacommands)
        return options


PROVIDERS = {
    p.name: p
    for p in (
        Provider("cpu", "CPUExecutionProvider", "cpu", "pip install onnxruntime", takes_device_id=False,
                 binds_at_offsets=True, one_row_paths=("int4",)),
        Provider("cuda", "CUDAExecutionProvider", "cuda",
                 "pip uninstall onnxruntime && pip install onnxruntime-gpu", captures_graphs=True, binds_at_offsets=True,
                 one_kv_head_per_query_environment=(("ORT_ENABLE_XQA", "0"),)),
        # The seed's DirectML options.
        Provider("dml", "DmlExecutionProvider", "dml", "pip uninstall onnxruntime && pip install onnxruntime-directml",
                 needs_sequential_plan=True, has_metacommands=True,
                 base_options=(("enable_dynamic_graph_fusion", "True"),)),
        Provider("webgpu", "WebGpuExecutionProvider", "webgpu", "pip install onnxruntime-ep-webgpu",
                 plugin="onnxruntime_ep_webgpu", tokens_on_device=False, allocates_through_session=True,
                 takes_device_id=False),
    )
}


def get_provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise LlamaOrtError(f"--provider: unknown provider {name!r}; choose one of {', '.join(PROVIDERS)}") from None


def add_to_session(provider: Provider, options: ort.SessionOptions, device_id: int = 0,
                   disable_metacommands: bool = False, graph: bool = False) -> list | None:
    """Put `provider` into `options`; returns the `providers=` list for InferenceSession (None for a plugin).

    Raises LlamaOrtError naming what to install when the provider is not available.
    """
    ep_options = provider.ep_options(device_id, disable_metacommands, graph)
    if provider.needs_sequential_plan:
        options.enable_mem_pattern = False
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if provider.plugin:
        options.add_provider_for_devices([plugin_device(provider, device_id)], ep_options)
        return None
    check_available(provider)
    return [(provider.ep, ep_options)]


def check_available(provider: Provider) -> None:
    """Raise LlamaOrtError naming what to install when `provider` cannot run here (before any work for it)."""
    if provider.plugin:
        plugin_device(provider, 0)
    elif provider.ep not in ort.get_available_providers():
        raise LlamaOrtError(f"--provider {provider.name}: this onnxruntime has no {provider.ep}; "
                            f"install it with `{provider.install}`")


_registered_plugins: dict[str, str] = {}  # package -> the EP name its library registered


def plugin_device(provider: Provider, device_id: int) -> ort.OrtEpDevice:
    """The plugin EP's device number `device_id`, registering the plugin's library on first use."""
    if provider.plugin not in _registered_plugins:
        try:
            package = importlib.import_module(provider.plugin)
        except ImportError:
            raise LlamaOrtError(f"--provider {provider.name}: the plugin is not installed; "
                                f"install it with `{provider.install}`") from None
        ort.register_execution_provider_library(provider.name, package.get_library_path())
        _registered_plugins[provider.plugin] = package.get_ep_name()
    devices = [d for d in ort.get_ep_devices() if d.ep_name == _registered_plugins[provider.plugin]]
    if device_id >= len(devices):
        raise LlamaOrtError(f"--device_id {device_id}: {provider.ep} found {len(devices)} device(s)")
    return devices[device_id]
