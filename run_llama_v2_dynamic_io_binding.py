"""Generate with a KV cache that grows on the device as the text gets longer, as the seed's script of this name did."""

import sys

from llama_ort.cli.seed import run_seed_generation, seed_parser

if __name__ == "__main__":
    args = seed_parser(__doc__, dynamic=True).parse_args()
    sys.exit(run_seed_generation(args.prompt, args.model_dir, max_gen_len=args.max_gen_len, ignore_eos=args.ignore_eos,
                                 padding=args.padding, provider=args.provider, device_id=args.device_id,
                                 disable_metacommands=args.disable_metacommands))
