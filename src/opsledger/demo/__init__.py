"""Demo data for ``opsledger demo``: a deterministic, realistic organisation's records."""

from opsledger.demo.generator import REFERENCE_KINDS, default_end, generate, window

__all__ = ["REFERENCE_KINDS", "default_end", "generate", "window"]
