"""A post-incident review written by `opsledger incidents review` (and edited by people) into
action_item records: `opsledger import --from review FILE`. The format is described in
`opsledger.incidents.review` and docs/commands/incidents.md."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from opsledger.connectors.base import Connector, NativeRecord, PayloadError, register

NAME = "review"


def parse_path(path: Path) -> list[NativeRecord]:
    from opsledger.incidents.review import ReviewError, parse_review

    if not path.is_file():
        raise PayloadError(NAME, str(path), "expected a Markdown file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PayloadError(NAME, str(path), "not UTF-8") from None
    try:
        return parse_review(text)
    except ReviewError as exc:
        where = f"{path}, line {exc.line}" if exc.line else str(path)
        raise PayloadError(NAME, where, exc.reason) from None


def parse(body: bytes, headers: Mapping[str, str]) -> list[NativeRecord]:
    raise PayloadError(
        NAME, "", "review has no webhook receiver; use `opsledger import --from review FILE`", 404
    )


CONNECTOR = register(
    Connector(NAME, parse, patch=False, description="Post-incident review (Markdown file)",
              parse_path=parse_path)
)
