"""Demo data for ``opsledger demo``: a deterministic, realistic organisation's records.

generator.py is the entry point; common.py (types, constants, the clock, random streams),
catalogues.py (rules, families, tunables), org.py (the organisation and its reference
records) and year.py (the twelve months of events) hold the parts.
"""

from opsledger.demo.common import REFERENCE_KINDS, default_end, window
from opsledger.demo.generator import generate

__all__ = ["REFERENCE_KINDS", "default_end", "generate", "window"]
