"""Does an execution provider register a kernel for every node of a model? Checked without running it.

Each node (If branches included) is resolved the way ONNX Runtime resolves it: its schema version at the
model's opset, and the tensor type bound to each of its type constraints. A kernel matches when
onnxruntime's lookup would take it (core/framework/kernel_registry.cc, VerifyVersion and the type check):
the same since version, or a closed [since, end] range holding the node's, and every constraint the
kernel declares allows the node's type. Schemas come from the installed onnxruntime, which also knows the
com.microsoft contrib ops.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cache

import onnx
from onnx import TensorProto
from onnxruntime.capi import onnxruntime_pybind11_state as ort_c


@dataclass(frozen=True)
class Kernel:
    op: str
    domain: str
    since_version: int
    end_version: int | None  # None: open-ended, matches only its own since version
    types: dict[str, frozenset[str]]  # type constraint -> allowed tensor types ("float16", "int64", ...)

    def takes_version(self, since_version: int) -> bool:
        if self.end_version is None:
            return since_version == self.since_version
        return self.since_version <= since_version <= self.end_version

    def rejected_types(self, bound: dict[str, str]) -> list[str]:
        return [f"{label}={bound[label]}" for label, allowed in self.types.items()
                if label in bound and bound[label] not in allowed]


@dataclass(frozen=True)
class NodeUse:
    node: onnx.NodeProto
    graph: str  # the graph holding the node: the model's, or an If branch's
    since_version: int
    types: dict[str, str]  # type constraint -> the tensor type bound at this node

    def describe(self) -> str:
        domain = self.node.domain or "ai.onnx"
        types = ", ".join(f"{k}={v}" for k, v in sorted(self.types.items()))
        return f"{domain}.{self.node.op_type}-{self.since_version} [{types}] ({self.node.name} in {self.graph})"


def type_name(elem_type: int) -> str:
    return TensorProto.DataType.Name(elem_type).lower()


def strip_tensor(type_str: str) -> str:
    return type_str.removeprefix("tensor(").removesuffix(")")


@cache
def schemas() -> dict[tuple[str, str], list]:
    """(domain, op) -> onnxruntime's schemas of that op, oldest first."""
    table = defaultdict(list)
    for schema in ort_c.get_all_operator_schema():
        table[schema.domain, schema.name].append(schema)
    for versions in table.values():
        versions.sort(key=lambda s: s.since_version)
    return table


def schema_at(domain: str, op: str, opset: int):
    candidates = [s for s in schemas().get((domain, op), []) if s.since_version <= opset]
    if not candidates:
        raise AssertionError(f"onnxruntime knows no schema of {domain or 'ai.onnx'}.{op} at opset {opset}")
    return candidates[-1]


def node_uses(model: onnx.ModelProto) -> list[NodeUse]:
    """Every node with its schema version and bound types, walking into If branches."""
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    uses: list[NodeUse] = []

    def walk(graph: onnx.GraphProto, outer: dict[str, str]) -> None:
        known = dict(outer)  # value name -> tensor type
        for v in list(graph.input) + list(graph.output) + list(graph.value_info):
            if v.type.tensor_type.elem_type:
                known[v.name] = type_name(v.type.tensor_type.elem_type)
        for init in graph.initializer:
            known[init.name] = type_name(init.data_type)
        for node in graph.node:
            domain = "" if node.domain == "ai.onnx" else node.domain
            schema = schema_at(domain, node.op_type, opsets[domain])
            bound = bind_types(node, schema, known)
            uses.append(NodeUse(node, graph.name, schema.since_version, bound))
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g, known)

    walk(model.graph, {})
    return uses


def bind_types(node: onnx.NodeProto, schema, known: dict[str, str]) -> dict[str, str]:
    """Type constraint -> tensor type at this node; records the node's output types in `known`."""
    params = {c.type_param_str for c in schema.type_constraints}
    bound: dict[str, str] = {}

    def formal(formals, i):
        if i < len(formals):
            return formals[i]
        last = formals[-1] if formals else None
        return last if last is not None and last.option == last.option.Variadic else None

    for i, name in enumerate(node.input):
        f = formal(schema.inputs, i)
        if name and f is not None and f.typeStr in params and name in known:
            bound.setdefault(f.typeStr, known[name])
    if node.op_type == "Cast":
        bound["T2"] = type_name(next(a.i for a in node.attribute if a.name == "to"))
    for i, name in enumerate(node.output):
        f = formal(schema.outputs, i)
        if not name or f is None:
            continue
        if f.typeStr in params:
            if name in known:  # declared (graph outputs): binds the constraint, e.g. If's V
                bound.setdefault(f.typeStr, known[name])
            elif f.typeStr in bound:
                known[name] = bound[f.typeStr]
        else:
            known[name] = strip_tensor(f.typeStr)
    if node.op_type == "If":
        then_branch = next(a.g for a in node.attribute if a.name == "then_branch")
        for name, out in zip(node.output, then_branch.output):
            known[name] = type_name(out.type.tensor_type.elem_type)
            bound.setdefault("V", known[name])
    return bound


def missing_kernels(uses: list[NodeUse], kernels: dict[tuple[str, str], list[Kernel]], provider: str,
                    casts_float16: bool = False) -> list[str]:
    """One line per node that no kernel of `kernels` takes, saying why.

    casts_float16: the CPU provider's way out: a float16 node with no float16 kernel runs on the float kernel,
    with Casts that onnxruntime inserts around it (core/optimizer/insert_cast_transformer.cc).
    """
    problems = []
    for use in uses:
        node = use.node
        registered = kernels.get((node.domain, node.op_type), [])
        if not registered:
            problems.append(f"{use.describe()}: {provider} registers no {node.op_type} kernel")
            continue
        versioned = [k for k in registered if k.takes_version(use.since_version)]
        if not versioned:
            ranges = ", ".join(str(k.since_version) if k.end_version is None else f"[{k.since_version}, {k.end_version}]"
                               for k in registered)
            problems.append(f"{use.describe()}: {provider} registers {node.op_type} only for since versions {ranges}")
            continue
        rejections = [k.rejected_types(use.types) for k in versioned]
        as_float = {label: "float" if t == "float16" else t for label, t in use.types.items()}
        if casts_float16 and any(not k.rejected_types(as_float) for k in versioned):
            continue
        if all(rejections):
            problems.append(f"{use.describe()}: {provider}'s {node.op_type} kernel does not take "
                            f"{', '.join(rejections[0])} (allowed: "
                            f"{ {label: sorted(t) for label, t in versioned[0].types.items()} })")
    return problems


def installed_kernels(provider: str) -> dict[tuple[str, str], list[Kernel]]:
    """The kernels the installed onnxruntime build registers for `provider`."""
    table = defaultdict(list)
    for k in ort_c.get_all_opkernel_def():
        if k.provider != provider:
            continue
        start, end = k.version_range
        types = {label: frozenset(map(strip_tensor, allowed)) for label, allowed in k.type_constraints.items()}
        table[k.domain, k.op_name].append(Kernel(k.op_name, k.domain, start, None if end >= 2**31 - 1 else end, types))
    return table

