"""Running a model folder: a session on a provider's device, IO binding, sampling and generation."""

from .generate import GenerateOptions, generate_ids, generate_step
from .generation_config import sampling_defaults
from .sampling import SamplingParams
from .session import Model, load_model

__all__ = ["GenerateOptions", "Model", "SamplingParams", "generate_ids", "generate_step", "load_model",
           "sampling_defaults"]
