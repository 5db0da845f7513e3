"""llama-ort: Llama-family checkpoints as ONNX models optimized for ONNX Runtime."""

__version__ = "0.1.0"
