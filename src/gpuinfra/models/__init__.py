"""Pure physics and policy math, one module per concern; no clock, no globals, no simulator."""
