"""A benchmark's results as a JSON document, a table on the terminal and a PNG chart.

Each measured cell also gets its ratio to the best peer (the fastest row of another system, at the same
precision class) in that cell: decode as tokens/s over the best's, prefill and time to first token as the
best's time over this one's, so above 1 is always faster than every peer.
"""

from __future__ import annotations

import datetime
import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .environment import hardware, versions
from .peers import PEERS
from .results import MISSING, OK, Row
from .sources import Sources
from .workload import Workload

FORMAT_VERSION = 1
OURS = "llama-ort"
# Precisions that compare: a Q4_1 GGUF is llama.cpp's 4-bit, as int4 is ours and onnxruntime-genai's
PRECISION_CLASSES = {"fp32": "fp32", "F32": "fp32", "fp16": "16-bit", "bf16": "16-bit", "F16": "16-bit",
                     "BF16": "16-bit", "int4": "4-bit", "Q4_0": "4-bit", "Q4_1": "4-bit", "Q4_K": "4-bit"}
METRICS = {"decode": ("decode_tok_s", True), "prefill": ("prefill_ms", False), "ttft": ("ttft_ms", False)}


def precision_class(precision: str) -> str:
    return PRECISION_CLASSES.get(precision, precision)


def compare_to_best_peer(rows: list[dict]) -> None:
    """Add `vs_best_peer` to every measured cell of `rows` (row dicts): ratio and the best peer's label."""
    measured = [(row, cell) for row in rows if row["status"] == OK for cell in row["cells"] if not cell["skipped"]]
    for row, cell in measured:
        rivals = [(r, c) for r, c in measured if r["peer"] != OURS and c["batch"] == cell["batch"]
                  and c["prompt_len"] == cell["prompt_len"]
                  and precision_class(r["precision"]) == precision_class(row["precision"])]
        cell["vs_best_peer"] = {}
        for metric, (field, higher_is_better) in METRICS.items():
            pick = max if higher_is_better else min
            best_row, best_cell = pick(rivals, key=lambda rc: rc[1][field], default=(None, None))
            if best_cell is None:
                continue
            ratio = cell[field] / best_cell[field] if higher_is_better else best_cell[field] / cell[field]
            cell["vs_best_peer"][metric] = {"ratio": round(ratio, 3), "peer": best_row["label"]}


def build_report(sources: Sources, rows: list[Row], workload: Workload, command: list[str] | None = None) -> dict:
    present = {row.peer for row in rows if row.status != MISSING}
    peers = {}
    for name in PEERS:
        missing = next((row for row in rows if row.peer == name and row.status == MISSING), None)
        if missing is not None:
            peers[name] = {"status": "missing", "reason": missing.reason}
        elif name in present:
            peers[name] = {"status": "present"}
    report = {
        "format_version": FORMAT_VERSION,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(command if command is not None else sys.argv),
        "versions": versions(),
        "hardware": hardware(),
        "workload": workload.to_dict(),
        "model": {"name": sources.name, "format": sources.format,
                  "checkpoint": str(sources.checkpoint) if sources.checkpoint else "embedded",
                  "spec": sources.spec.to_dict()},
        "peers": peers,
        "rows": [asdict(row) for row in rows],
    }
    compare_to_best_peer(report["rows"])
    return report


def write_json(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")


def number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio_text(cell: dict, metric: str) -> str:
    found = cell.get("vs_best_peer", {}).get(metric)
    return "" if found is None else f"{found['ratio']:.2f}x"


def print_report(report: dict, console: Console | None = None) -> None:
    console = console or Console()
    w = report["workload"]
    cells = Table(title=f"{report['model']['name']} on {w['device']}: {w['new_tokens']} new tokens, "
                        f"medians of {w['repeats'] * w['rounds']} runs, threads {w['threads'] or 'default'}")
    for name, justify in (("variant", "left"), ("batch", "right"), ("prompt", "right"), ("prefill ms", "right"),
                          ("vs best", "right"), ("TTFT ms", "right"), ("decode tok/s", "right"),
                          ("vs best", "right"), ("peak MB", "right")):
        cells.add_column(name, justify=justify)
    for row in report["rows"]:
        for cell in row["cells"] if row["status"] == OK else []:
            if cell["skipped"]:
                cells.add_row(row["label"], str(cell["batch"]), str(cell["prompt_len"]), f"[dim]{cell['skipped']}")
                continue
            style = "bold" if row["peer"] == OURS else ""
            cells.add_row(row["label"], str(cell["batch"]), str(cell["prompt_len"]), number(cell["prefill_ms"]),
                          ratio_text(cell, "prefill"), number(cell["ttft_ms"]), number(cell["decode_tok_s"]),
                          ratio_text(cell, "decode"), number(cell["peak_memory_mb"], 0), style=style)
    console.print(cells)

    builds = Table(title="builds")
    for name in ("variant", "status", "build s", "peak RSS MB", "peak anon MB", "model MB"):
        builds.add_column(name, justify="left" if name in ("variant", "status") else "right")
    for row in report["rows"]:
        b = row["build"]
        status = row["status"] + (" (build reused)" if b and b["reused"] else "")
        builds.add_row(row["label"], status, number(b and b["seconds"]), number(b and b["peak_rss_mb"], 0),
                       number(b and b["peak_anon_mb"], 0), number(b and b["output_mb"], 0))
    console.print(builds)
    for row in report["rows"]:
        if row["reason"]:
            console.print(f"[bold]{escape(row['label'])}[/]: {row['status']}: {escape(row['reason'])}",
                          highlight=False)


def write_chart(report: dict, path: Path) -> None:
    """Decode tokens/s and prefill ms per variant, one panel per cell, bars labelled with the ratio to the best peer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in report["rows"] if row["status"] == OK]
    keys = sorted({(c["batch"], c["prompt_len"]) for row in rows for c in row["cells"] if not c["skipped"]})
    if not keys:
        return
    colors = dict(zip(PEERS, plt.get_cmap("tab10").colors))
    labels = [row["label"] for row in rows]
    fig, axes = plt.subplots(2, len(keys), figsize=(max(8.0, 5.5 * len(keys)), 1.6 + 0.45 * len(labels) * 2),
                             squeeze=False)
    for col, (batch, prompt_len) in enumerate(keys):
        for ax, (metric, (field, _)) in zip(axes[:, col], list(METRICS.items())[:2]):
            bars = []
            for row in rows:
                cell = next((c for c in row["cells"] if (c["batch"], c["prompt_len"]) == (batch, prompt_len)
                             and not c["skipped"]), None)
                bars.append((row, cell))
            values = [cell[field] if cell else 0 for _, cell in bars]
            ax.barh(range(len(bars)), values, color=[colors[row["peer"]] for row, _ in bars])
            for y, (row, cell) in enumerate(bars):
                if cell:
                    ratio = ratio_text(cell, metric)
                    ax.text(cell[field], y, f" {cell[field]:,.1f}" + (f" ({ratio})" if ratio else ""), va="center",
                            fontsize=8)
            ax.set_yticks(range(len(bars)), labels if col == 0 else [""] * len(bars), fontsize=8)
            ax.invert_yaxis()
            ax.set_title(f"{'decode tokens/s' if metric == 'decode' else 'prefill ms'}: batch {batch}, "
                         f"prompt {prompt_len}", fontsize=9)
            ax.margins(x=0.35)
    w = report["workload"]
    fig.suptitle(f"{report['model']['name']} on {w['device']} ({report['hardware']['cpu']}, threads "
                 f"{w['threads'] or 'default'}), {report['date'][:10]}\n(ratio: against the best peer at the same "
                 "precision, above 1 is faster)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
