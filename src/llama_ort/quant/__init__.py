"""Pure tensor transforms for weights: blockwise int4 packing for MatMulNBits, int8 tables for GatherBlockQuantized."""
