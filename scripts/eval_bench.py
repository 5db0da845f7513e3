"""`llama-ort eval` and `llama-ort info` now against a baseline commit, on the embedded SmolLM2 (cpu, fp32).

    python scripts/eval_bench.py [--tokens 1600,8000] [--baseline 90fb9c2 --baseline-tokens 1600]
                                 [--repeats 3] [--out docs/bench/eval-cpu-smollm2.json]

The text: README.md and docs/*.md in name order, joined by blank lines and repeated as often as needed, tokenized
with the model's tokenizer; a run scores its first N tokens. Each run is a child process of its own, so that
memory is its own: it loads the model, notes its resident memory, scores the tokens (timed), and reports its peak
resident memory above that (VmHWM, reset after loading) and the perplexity. The baseline's code (the commit's
src/, by `git archive`) scores the same tokens from the same model folder; it keeps every logits row, so it is
run only at --baseline-tokens. Each case runs --repeats times, the cases taking turns (so that other load on the
machine falls on all of them); a row gives the best and the median speed. `info` is timed as a whole command
(imports included, --repeats runs each, median), at both commits.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models/optimized/smollm2-135m-instruct-cpu-fp32"


def bench_text() -> str:
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n\n".join(path.read_text(encoding="utf-8") for path in documents)


def worker(code: str, tokens: int) -> dict:
    """Runs in the child: score the first `tokens` tokens with this process's llama_ort (`code`: new or old)."""
    from llama_ort.bench.memory import own_peak_rss_mb, reset_own_peak_rss, status_kb
    from llama_ort.runtime.session import load_model
    from llama_ort.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_folder(MODEL)
    text = bench_text()
    ids = tokenizer.encode(text)
    while len(ids) < tokens:
        text += "\n\n" + bench_text()
        ids = tokenizer.encode(text)
    ids = ids[:tokens]
    started = time.perf_counter()
    if code == "new":
        from llama_ort.verify.perplexity import perplexity

        model = load_model(MODEL, every_position=True)
        score = lambda: perplexity(model, ids).value  # noqa: E731
    else:
        from llama_ort.verify.perplexity import teacher_forced_perplexity

        model = load_model(MODEL)
        score = lambda: teacher_forced_perplexity(model, ids)  # noqa: E731
    load_s = time.perf_counter() - started
    model_mb = status_kb("self", ("VmRSS",))["VmRSS"] / 1024
    reset_own_peak_rss()
    started = time.perf_counter()
    value = score()
    seconds = time.perf_counter() - started
    return {"code": code, "tokens": tokens, "perplexity": round(value, 4), "score_s": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1), "load_s": round(load_s, 2), "model_rss_mb": round(model_mb),
            "peak_above_model_mb": round(own_peak_rss_mb() - model_mb)}


def run_worker(src: Path, code: str, tokens: int) -> dict:
    command = [sys.executable, __file__, "--worker", code, "--tokens", str(tokens)]
    out = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True, text=True,
                         check=True).stdout
    row = json.loads(out.splitlines()[-1])
    print(json.dumps(row), file=sys.stderr)
    return row


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def summary(runs: list[dict]) -> dict:
    """One case's runs: the best and the median speed, the highest memory."""
    speeds = sorted(run["tokens_per_s"] for run in runs)
    return {**runs[0], "tokens_per_s": speeds[-1], "tokens_per_s_median": round(statistics.median(speeds), 1),
            "score_s": min(run["score_s"] for run in runs), "runs": len(runs),
            "peak_above_model_mb": max(run["peak_above_model_mb"] for run in runs)}


def info_seconds(src: Path, runs: int) -> float:
    """Median wall time of `llama-ort info` (the embedded checkpoint) as a whole command, imports included."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "llama_ort", "info"], env={**os.environ, "PYTHONPATH": str(src)},
                       capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", default="1600,8000", help="token counts the new code scores")
    parser.add_argument("--baseline", default="90fb9c2", help="the commit measured as before")
    parser.add_argument("--baseline-tokens", default="1600", help="token counts the baseline scores")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case (default: 3)")
    parser.add_argument("--out", type=Path, default=None, help="write the results here as JSON")
    parser.add_argument("--worker", choices=("new", "old"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, int(args.tokens))))
        return

    sys.path.insert(0, str(ROOT / "src"))
    from llama_ort.pipeline import embedded_model_folder

    load_at_start = [round(load, 2) for load in os.getloadavg()]  # other work on the machine slows every case
    os.chdir(ROOT)  # the embedded model's default folder is relative: models/optimized/...
    embedded_model_folder("cpu")
    with tempfile.TemporaryDirectory() as old:
        archive = subprocess.run(["git", "archive", args.baseline, "src"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", old], input=archive.stdout, check=True)
        new_src, old_src = ROOT / "src", Path(old) / "src"
        cases = [(old_src, "old", int(n)) for n in args.baseline_tokens.split(",")]
        cases += [(new_src, "new", int(n)) for n in args.tokens.split(",")]
        runs = {case: [] for case in cases}
        for _ in range(args.repeats):
            for case in cases:
                runs[case].append(run_worker(*case))
        rows = [summary(case_runs) for case_runs in runs.values()]
        info = {"new_s": info_seconds(new_src, args.repeats), "baseline_s": info_seconds(old_src, args.repeats)}
    baseline = {row["tokens"]: row for row in rows if row["code"] == "old"}
    for row in rows:
        if row["code"] == "new" and baseline:
            # Against the baseline at the same length, else at its longest: the baseline's time per token grows
            # with the text, so the ratio at a longer text is an underestimate.
            old_row = baseline.get(row["tokens"], baseline[max(baseline)])
            row["speedup_per_token"] = round(row["tokens_per_s"] / old_row["tokens_per_s"], 1)
            row["speedup_against_tokens"] = old_row["tokens"]
    result = {
        "what": "llama-ort eval (perplexity) and info on the embedded SmolLM2-135M-Instruct, cpu fp32",
        "text": "README.md + docs/*.md (name order, blank lines between, repeated), first N tokens",
        "baseline": args.baseline, "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                                             capture_output=True, text=True).stdout.strip(),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "load_average_at_start": load_at_start,
                    "load_average_at_end": [round(load, 2) for load in os.getloadavg()]},
        "eval": rows, "info": info,
    }
    text = json.dumps(result, indent=2) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
