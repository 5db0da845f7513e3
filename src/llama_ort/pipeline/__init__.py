"""The optimize pipeline: passes (load, build, verify), each cached by a content hash, then the output folder."""

from .run import OptimizeResult, default_output_name, embedded_model_folder, optimize

__all__ = ["OptimizeResult", "default_output_name", "embedded_model_folder", "optimize"]
