"""What batch invariance costs a lone stream on the CPU: the engine's decode steps run at least two rows, since
MatMulNBits computes one row on another path than several (docs/serve.md). Times one request alone on an engine
of two slots with batch invariance off (one-row steps) and on (two-row steps), interleaved, on a model folder.
Usage: python scripts/batch_invariance_cost.py MODEL_FOLDER [--rounds 6] [--tokens 128]"""

import argparse
import json
import statistics
import time
from pathlib import Path

from llama_ort.runtime import load_model
from llama_ort.runtime.engine import Engine, EngineConfig
from llama_ort.runtime.generate import GenerateOptions
from llama_ort.tokenizer import Tokenizer


def decode_tok_s(engine: Engine, prompt: list[int], tokens: int) -> float:
    engine.add(prompt, GenerateOptions(max_new_tokens=tokens, ignore_eos=True))
    engine.step()  # the prompt and the first token
    start = time.perf_counter()
    while engine.has_work:
        engine.step()
    return (tokens - 1) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    model = load_model(args.model, max_seq_len=512)
    tokenizer = Tokenizer.from_folder(args.model)
    prompt = tokenizer.encode_chat([{"role": "user", "content": "Write a story about the sea."}])
    engines = {"one-row steps": Engine(model, tokenizer, EngineConfig(slots=2, batch_invariant=False)),
               "two-row steps": Engine(model, tokenizer, EngineConfig(slots=2))}
    rates = {name: [] for name in engines}
    for _ in range(args.rounds):
        for name, engine in engines.items():
            rates[name].append(decode_tok_s(engine, prompt, args.tokens))
    result = {name: {"median_tok_s": statistics.median(r), "runs": r} for name, r in rates.items()}
    result["ratio_two_over_one"] = result["two-row steps"]["median_tok_s"] / result["one-row steps"]["median_tok_s"]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
