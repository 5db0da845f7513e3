"""Checking a built model: a numpy forward pass on the checkpoint's own weights, and perplexity."""
