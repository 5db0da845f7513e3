"""Helpers shared by the tests: the transformers oracle, tiny seeded models, kernel coverage checks.

A package with a name of our own, so that no helper can hide an installed module (a flat `tests/kernels.py`
once shadowed the PyPI package `kernels` that transformers imports).
"""
