"""Generate with a static KV cache (max_seq_len fixed at load), as the seed's script of this name did."""

import sys

from llama_ort.cli.seed import run_seed_generation, seed_parser

if __name__ == "__main__":
    args = seed_parser(__doc__, dynamic=False).parse_args()
    sys.exit(run_seed_generation(args.prompt, args.model_dir, max_gen_len=args.max_gen_len, ignore_eos=args.ignore_eos,
                                 max_seq_len=args.max_seq_len, provider=args.provider, device_id=args.device_id,
                                 disable_metacommands=args.disable_metacommands))
