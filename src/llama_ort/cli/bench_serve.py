"""`llama-ort bench-serve`: streaming clients against the real HTTP server, and llama.cpp's server beside it."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from .arg_types import non_negative_float, non_negative_int, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench-serve", help="load-test the OpenAI server with streaming clients, beside llama.cpp's server",
        description="Start `llama-ort serve` (and llama.cpp's server on the same GGUF, where llama-cpp-python[server] "
                    "is installed), send streaming chat requests from N clients arriving all at once and one every "
                    "--interval seconds, then hold a chat whose history grows; report aggregate tokens/s, time to "
                    "first token (p50, p99) and tokens/s per stream as a table, JSON and a PNG chart.")
    parser.add_argument("--model", type=Path, default=None,
                        help="llama-ort model folder (default: the embedded model, built at --precision)")
    parser.add_argument("--precision", default="int4", help="without --model: the embedded model's (default: int4)")
    parser.add_argument("--clients", type=positive_int, default=16, help="streaming clients (default: 16)")
    parser.add_argument("--interval", type=non_negative_float, default=0.25,
                        help="seconds between arrivals in the staggered run (default: 0.25)")
    parser.add_argument("--max-tokens", type=positive_int, default=64, help="tokens per answer (default: 64)")
    parser.add_argument("--max-seq-len", type=positive_int, default=2048, help="a slot's positions (default: 2048)")
    parser.add_argument("--chat-turns", type=non_negative_int, default=5,
                        help="turns of the chat run, 0 for none (default: 5)")
    parser.add_argument("--no-chat-template", dest="chat", action="store_false",
                        help="send plain text completions (a model with no chat template, e.g. make-random's)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="another argument for `llama-ort serve` (repeatable), e.g. --server-arg=--provider=cuda")
    parser.add_argument("--baseline", type=Path, default=None, metavar="SOURCE_TREE",
                        help="another llama-ort source tree (a git worktree of an earlier commit, say), served as "
                             "'llama-ort baseline' in the same run: an A/B of two versions")
    parser.add_argument("--llama-cpp-python", default=sys.executable, metavar="PYTHON",
                        help="the Python that has llama-cpp-python[server] (default: this one)")
    parser.add_argument("--gguf", type=Path, default=None,
                        help="the GGUF llama.cpp serves (default: the embedded model's)")
    parser.add_argument("--threads", type=positive_int, default=os.cpu_count() or 1,
                        help="llama.cpp's threads (default: every core)")
    parser.add_argument("--output", type=Path, default=Path("bench-results/serve"),
                        help="folder for the JSON, the chart and the servers' logs (default: bench-results/serve)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bench import load
    from ..checkpoint import embedded_model_path
    from ..pipeline import embedded_model_folder
    from .common import setup_logging

    setup_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    args.output.mkdir(parents=True, exist_ok=True)
    folder = args.model or embedded_model_folder("cpu", args.precision)
    plans = {"all at once": load.LoadPlan(args.clients, 0.0, args.max_tokens),
             f"one every {args.interval:g} s": load.LoadPlan(args.clients, args.interval, args.max_tokens)}
    ours = lambda port: load.ours_command(folder, port, args.clients, args.max_seq_len, args.server_arg)  # noqa: E731
    servers = {"llama-ort": (ours, None)}
    if args.baseline:
        servers["llama-ort baseline"] = (ours, {**os.environ, "PYTHONPATH": str(args.baseline.resolve() / "src")})
    missing = {}
    reason = llama_cpp_missing(args.llama_cpp_python)
    if reason:
        missing["llama.cpp"] = reason
    else:
        gguf = args.gguf or embedded_model_path()
        servers["llama.cpp"] = (lambda port: load.llama_cpp_command(args.llama_cpp_python, gguf, port,
                                                                    args.max_seq_len, args.threads), None)
    results = []
    for name, (command, env) in servers.items():
        port = load.free_port()
        url = f"http://127.0.0.1:{port}"
        health = "/health" if name.startswith("llama-ort") else "/v1/models"
        with load.running_server(command(port), url, health, args.output / f"{slug(name)}.log", env):
            model = served_model(url)
            asyncio.run(load.run_load(url, model, load.LoadPlan(2, 0.0, 8), args.chat))  # warm-up
            for label, plan in plans.items():
                result = load.summarize(name, plan, asyncio.run(load.run_load(url, model, plan, args.chat)))
                results.append({"scenario": label, **asdict(result)})
                print_row(label, result)
            if not (args.chat and args.chat_turns):
                continue
            chat = asyncio.run(load.run_chat(url, model, args.chat_turns, 200, 16))
            results.append({"scenario": "chat", "server": name, "turn_ttft_s": [s.ttft_s for s in chat],
                            "errors": sum(s.error is not None for s in chat)})
            print(f"{name:18} chat: time to first token per turn "
                  + ", ".join(f"{s.ttft_s:.2f} s" if s.ttft_s else "failed" for s in chat))
    report = {"command": sys.argv, "clients": args.clients, "max_tokens": args.max_tokens, "results": results,
              "missing": missing}
    write_atomically(args.output / "serve-bench.json", json.dumps(report, indent=1))
    chart(report, args.output / "serve-bench.png")
    for name, why in missing.items():
        print(f"{name}: not measured: {why}")
    print(f"wrote {args.output / 'serve-bench.json'}")
    return 0


def slug(name: str) -> str:
    return name.replace(".", "").replace(" ", "-")


def served_model(url: str) -> str:
    import httpx

    return httpx.get(f"{url}/v1/models", timeout=10).json()["data"][0]["id"]


def llama_cpp_missing(python: str) -> str | None:
    import subprocess

    probe = subprocess.run([python, "-c", "import llama_cpp.server"], capture_output=True, text=True)
    if probe.returncode == 0:
        return None
    return (f"{python} has no llama-cpp-python[server] ({probe.stderr.strip().splitlines()[-1] if probe.stderr else '?'}"
            "): CMAKE_ARGS='-DGGML_NATIVE=ON' pip install 'llama-cpp-python[server]', then --llama-cpp-python")


def print_row(label: str, result) -> None:
    print(f"{result.server:18} {label:18} aggregate {result.aggregate_tok_s:7.1f} tok/s  "
          f"TTFT p50 {result.ttft_p50_s:5.2f} s p99 {result.ttft_p99_s:5.2f} s  "
          f"per stream {result.stream_tok_s_mean:6.1f} tok/s  errors {result.errors}")


def write_atomically(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        f.write(text)
    os.replace(f.name, path)


def chart(report: dict, path: Path) -> None:
    """Aggregate tokens/s and TTFT p50 per scenario, a bar per server."""
    try:
        import matplotlib
    except ImportError:
        print("no chart: matplotlib is not installed (pip install -e '.[bench]')")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["results"] if r["scenario"] != "chat"]
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    servers = list(dict.fromkeys(r["server"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(len(servers), 1)
    for k, server in enumerate(servers):
        mine = {r["scenario"]: r for r in rows if r["server"] == server}
        xs = [i + k * width for i in range(len(scenarios))]
        axes[0].bar(xs, [mine[s]["aggregate_tok_s"] if s in mine else 0 for s in scenarios], width, label=server)
        axes[1].bar(xs, [mine[s]["ttft_p50_s"] if s in mine else 0 for s in scenarios], width, label=server)
    for ax, title in zip(axes, ("aggregate tokens/s (higher is better)", "time to first token p50, s (lower is better)")):
        ax.set_xticks([i + width * (len(servers) - 1) / 2 for i in range(len(scenarios))], scenarios)
        ax.set_title(title)
        ax.legend()
    fig.suptitle(f"{report['clients']} streaming clients, {report['max_tokens']} tokens each")
    fig.tight_layout()
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".png") as f:
        fig.savefig(f.name)
    os.replace(f.name, path)
    plt.close(fig)
