"""opsledger: the system of record and KPI engine for operations teams."""

__version__ = "0.1.0"
