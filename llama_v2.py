"""Optimize Llama 2 for ONNX Runtime into models/optimized/llama_v2 and answer a prompt, as the seed's
script of this name did. `python llama_v2.py --help` lists its flags."""

import sys

from llama_ort.cli.llama_v2 import main

if __name__ == "__main__":
    sys.exit(main())
