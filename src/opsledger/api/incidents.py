"""Incident endpoints beyond listing: the lifecycle by hand, timeline, review."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
