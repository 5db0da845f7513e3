"""Benchmarks: llama-ort's models against their peers (onnxruntime-genai, transformers, llama.cpp) on the same
weights, and random-weight checkpoints of real models' shapes to run them on."""
