"""Regenerates src/llama_ort/graph/dml_kernels.json from ONNX Runtime's DirectML sources.

The DirectML execution provider cannot run on Linux, so the graph tests check dml models against its
kernel registrations instead. This reads them as text from a checkout of onnxruntime:

    python scripts/extract_dml_kernels.py /path/to/onnxruntime --source "onnxruntime@<commit> (<version>)"

Inputs (paths inside the checkout):
  OperatorRegistration.cpp  the REG_INFO* table (op, opset set, type lists, graph support, support query)
                            and the ONNX_OPERATOR_KERNEL_EX kernels borrowed from the CPU provider (If, ...)
  OperatorVersions.h        sc_sinceVer_<op> per opset set: the since version a REG_INFO row registers
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

DML = "onnxruntime/core/providers/dml"
REGISTRATION = f"{DML}/DmlExecutionProvider/src/Operators/OperatorRegistration.cpp"
VERSIONS = f"{DML}/OperatorAuthorHelper/OperatorVersions.h"
OUTPUT = Path(__file__).resolve().parent.parent / "src/llama_ort/graph/dml_kernels.json"

# SupportedTensorDataTypes flag -> ONNX type name (only tensor flags; sequences are left out).
TENSOR_FLAGS = {"Float32": "float", "UInt4": "uint4", "Int4": "int4", "UInt8": "uint8", "Int8": "int8",
                "UInt16": "uint16", "Int16": "int16", "Int32": "int32", "Int64": "int64", "Bool": "bool",
                "Float16": "float16", "Float64": "double", "UInt32": "uint32", "UInt64": "uint64"}
# REG_INFO macro -> domain; the kernel's since version comes from this opset set's namespace.
MACROS = {"REG_INFO": ("", "OnnxOperatorSet"), "REG_INFO_VER": ("", "OnnxOperatorSet"),
          "REG_INFO_COPY": ("", "OnnxOperatorSet"), "REG_INFO_DYNAMIC_OUTPUTS": ("", "OnnxOperatorSet"),
          "REG_INFO_MS": ("com.microsoft", "MsftOperatorSet"), "REG_INFO_MS_ALIAS": ("com.microsoft", "MsftOperatorSet"),
          "REG_INFO_MSDML": ("com.microsoft.dml", "MsftOperatorSet")}
ORT_DOMAINS = {"kOnnxDomain": "", "kMSDomain": "com.microsoft"}


def since_versions(text: str) -> dict[str, dict[str, int]]:
    """{namespace: {op: since_version}} from OperatorVersions.h."""
    table, namespace = {}, None
    for line in text.splitlines():
        if m := re.match(r"\s*namespace (\w+OperatorSet\d+)", line):
            namespace = table.setdefault(m[1], {})
        elif (m := re.match(r"\s*static const int sc_sinceVer_(\w+) = (\d+);", line)) and namespace is not None:
            namespace[m[1]] = int(m[2])
    return table


def type_flags(text: str) -> dict[str, set[str]]:
    """SupportedTensorDataTypes member -> the tensor types it allows, composites resolved."""
    body = re.search(r"enum class SupportedTensorDataTypes[^{]*\{(.*?)\n\};", text, re.S)[1]
    flags: dict[str, set[str]] = {}
    for name, value in re.findall(r"(\w+)\s*=\s*([^,]+(?:\|[^,]+)*),", re.sub(r"//.*", "", body)):
        if name in TENSOR_FLAGS:
            flags[name] = {TENSOR_FLAGS[name]}
        elif name == "All":
            flags[name] = set(TENSOR_FLAGS.values())
        else:
            flags[name] = set().union(*(flags.get(part.strip(), set()) for part in value.split("|")))
    return flags


def lists(text: str, kind: str) -> dict[str, list[str]]:
    """constexpr arrays named typeNameList* / supportedTypeList*: name -> elements as written."""
    found = {}
    for name, body in re.findall(rf"constexpr static std::array<{kind}, \d+> (\w+)\s*=\s*(?:/\*.*?\*/)?\s*\{{(.*?)\}};",
                                 text, re.S):
        found[name] = [part.strip() for part in re.sub(r"/\*.*?\*/", "", body).split(",") if part.strip()]
    for name, alias in re.findall(rf"constexpr static std::array<{kind}, \d+> (\w+)\s*=\s*(\w+);", text):
        found[name] = found[alias]
    return found


def split_args(args: str) -> list[str]:
    """Top-level comma split of a macro's arguments."""
    parts, depth, current = [], 0, ""
    for ch in args:
        depth += ch in "(<{" and 1 or ch in ")>}" and -1 or 0
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    return parts + [current.strip()] if current.strip() else parts


def table_rows(text: str, versions: dict, flags: dict) -> list[dict]:
    names = lists(text, "const char\\*")
    types = lists(text, "SupportedTensorDataTypes")
    table = re.search(r"operatorRegistrationInformationTable\[\]\s*=\s*\{(.*?)\n\};", text, re.S)[1]
    rows = []
    for macro, args in re.findall(r"\{(REG_INFO\w*)\((.*?)\)\},", re.sub(r"//.*", "", table)):
        domain, namespace = MACROS[macro]
        parts = split_args(args)
        opset_set, op = int(parts[0]), parts[1]
        rest = parts[3:] if macro == "REG_INFO_MS_ALIAS" else parts[2:]
        type_names, type_list = rest[0], rest[1]
        graph_support = rest[2] if len(rest) > 2 else ""  # Memcpy*: no DML graph support given
        constraints = {label.strip('"'): sorted(set().union(*(flags[f.split("::")[-1].strip()]
                                                             for f in flag_expr.split("|"))))
                       for label, flag_expr in zip(names[type_names], types[type_list])}
        row = {"op": op, "domain": domain, "since_version": versions[f"{namespace}{opset_set}"][op],
               "types": constraints, "in_dml_graph": graph_support.endswith("::Supported")}
        cpu_inputs = re.search(r"requiredConstantCpuInputs\(([\d,\s]*)\)", args)
        if cpu_inputs and cpu_inputs[1].strip():
            row["cpu_inputs"] = [int(i) for i in cpu_inputs[1].split(",")]
        if rest[-1].startswith("Query"):
            row["support_query"] = rest[-1]
        rows.append(row)
    return rows


def borrowed_kernels(text: str) -> list[dict]:
    """ONNX_OPERATOR_KERNEL_EX kernels the provider registers from the CPU provider's classes (If, sequences)."""
    rows = []
    for op, domain, version, body in re.findall(
            r"ONNX_OPERATOR_KERNEL_EX\(\s*(\w+),\s*(\w+),\s*(\d+),\s*kDmlExecutionProvider,(.*?)\n\s*\w+\);", text, re.S):
        constraints = {}
        for label, impl in re.findall(r'TypeConstraint\("(\w+)",\s*(.*?)\)\s*(?=[.,)])', body):
            scalar = re.search(r"GetTensorType<(\w+)>", impl)
            constraints[label] = [{"bool": "bool", "int32_t": "int32", "int64_t": "int64"}[scalar[1]]] if scalar \
                else sorted(TENSOR_FLAGS.values())  # AllFixedSizeTensorTypes and wider: every tensor type
        rows.append({"op": op, "domain": ORT_DOMAINS[domain], "since_version": int(version), "types": constraints,
                     "in_dml_graph": False})
    return rows


def with_end_versions(rows: list[dict]) -> list[dict]:
    """end_version = the next registration's since version - 1; the newest registration stays open (null)."""
    by_op = defaultdict(list)
    for row in rows:
        by_op[row["domain"], row["op"]].append(row)
    out = []
    for key in sorted(by_op):
        versions = sorted(by_op[key], key=lambda r: r["since_version"])
        for row, nxt in zip(versions, versions[1:] + [None]):
            out.append({**row, "end_version": nxt["since_version"] - 1 if nxt else None})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnxruntime", type=Path, help="a checkout of microsoft/onnxruntime")
    parser.add_argument("--source", required=True, help="what the checkout is: repository@commit (version)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    text = (args.onnxruntime / REGISTRATION).read_text()
    versions = since_versions((args.onnxruntime / VERSIONS).read_text())
    kernels = with_end_versions(table_rows(text, versions, type_flags(text)) + borrowed_kernels(text))
    header = {
        "source": args.source,
        "files": [REGISTRATION, VERSIONS],
        "generated_by": "scripts/extract_dml_kernels.py",
        "matching": "ONNX Runtime's kernel lookup (VerifyVersion in core/framework/kernel_registry.cc) matches an "
                    "open-ended registration, as every DirectML one is, only when the node's schema since_version "
                    "equals its since_version; end_version is informational (next registration - 1).",
        "types": "tensor types per type constraint; a constraint not listed is not checked by the registration",
    }
    rows = ",\n".join("  " + json.dumps(k) for k in kernels)  # one kernel a line: readable diffs on regeneration
    args.output.write_text(json.dumps(header, indent=1)[:-2] + f',\n "kernels": [\n{rows}\n ]\n}}\n')
    print(f"{len(kernels)} kernels -> {args.output}")


if __name__ == "__main__":
    main()
