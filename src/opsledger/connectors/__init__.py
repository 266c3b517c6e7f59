"""Connectors: vendor payload in, native records out (pure functions), one module per tool."""
