"""The HTTP surface: REST API under /api/v1, webhook receivers, health."""
