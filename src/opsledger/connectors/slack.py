"""Slack workspace export (the standard layout) into chat_message records.

`opsledger import --from slack DIR` reads an unzipped export:

    DIR/channels.json        public channels [{"id", "name", ...}]
    DIR/groups.json          private channels, same shape (optional)
    DIR/users.json           members [{"id", "name", "real_name", "profile", ...}]
                             (org_users.json in an Enterprise Grid export)
    DIR/<channel name>/<YYYY-MM-DD>.json
                             that day's messages [{"type": "message", "user", "text",
                             "ts": "1507000000.000200", "thread_ts", ...}]

Layout and message fields as described in Slack's help article "How to read Slack data
exports" (https://slack.com/help/articles/220556107). One record per message:
id `slack-<channel>-<ts>`, posted_at exactly the `ts` (seconds.microseconds, UTC), user the
member's `name` from users.json, thread the id of the thread's first message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opsledger.connectors.base import Connector, NativeRecord, PayloadError, register

NAME = "slack"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TS = re.compile(r"^([0-9]{1,12})(?:\.([0-9]{1,6}))?$")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\.json$")
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|([^>]*))?>")
SKIPPED_SUBTYPES = frozenset({"channel_join", "channel_leave"})


def ts_parts(where: str, value: Any) -> tuple[str, datetime]:
    """A Slack `ts` as its normal form (`seconds.micros`, six digits) and the exact time."""
    m = _TS.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise PayloadError(
            NAME, where, f"ts must be a string like '1507000000.000200', got {value!r}"
        )
    seconds, micros = int(m.group(1)), int((m.group(2) or "0").ljust(6, "0"))
    return f"{seconds}.{micros:06d}", EPOCH + timedelta(seconds=seconds, microseconds=micros)


def _load(path: Path, root: Path) -> Any:
    where = str(path.relative_to(root))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise PayloadError(NAME, where, "not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(
            NAME, f"{where} line {exc.lineno} column {exc.colno}", f"malformed JSON ({exc.msg})"
        ) from None


def _list_of_objects(data: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise PayloadError(NAME, where, "must be a JSON list of objects")
    return data


def _users(root: Path) -> dict[str, str]:
    for name in ("users.json", "org_users.json"):
        path = root / name
        if path.is_file():
            users = _list_of_objects(_load(path, root), name)
            out: dict[str, str] = {}
            for i, u in enumerate(users):
                uid, uname = u.get("id"), u.get("name")
                if not isinstance(uid, str) or not isinstance(uname, str):
                    raise PayloadError(NAME, f"{name}[{i}]", "a member needs an id and a name")
                out[uid] = uname
            return out
    raise PayloadError(NAME, "users.json", "missing: is this the top of an unzipped Slack export?")


def _channels(root: Path) -> list[str]:
    if not (root / "channels.json").is_file():
        raise PayloadError(
            NAME, "channels.json", "missing: is this the top of an unzipped Slack export?"
        )
    names: list[str] = []
    for file in ("channels.json", "groups.json"):
        if not (root / file).is_file():
            continue
        for i, c in enumerate(_list_of_objects(_load(root / file, root), file)):
            name = c.get("name")
            if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
                raise PayloadError(NAME, f"{file}[{i}].name", f"not a channel name: {name!r}")
            names.append(name)
    return names


def _author(msg: Mapping[str, Any], users: Mapping[str, str]) -> str | None:
    uid = msg.get("user")
    if isinstance(uid, str) and uid in users:
        return users[uid]
    for holder, key in ((msg.get("user_profile"), "name"), (msg, "username"),
                        (msg.get("bot_profile"), "name")):
        if isinstance(holder, Mapping) and isinstance(holder.get(key), str) and holder[key]:
            return str(holder[key])
    return uid if isinstance(uid, str) else None


def _text(text: Any, users: Mapping[str, str]) -> str | None:
    if not isinstance(text, str):
        return None

    def name(m: re.Match[str]) -> str:
        return "@" + (users.get(m.group(1)) or m.group(2) or m.group(1))

    return _MENTION.sub(name, text)


def _attachment_text(attachments: Any) -> str | None:
    """Integrations (PagerDuty, Alertmanager ...) often post an empty text and attachments:
    the first attachment's plain-text `fallback` (or `text`) then stands for the message."""
    if isinstance(attachments, list):
        for att in attachments:
            if isinstance(att, Mapping):
                for key in ("fallback", "text"):
                    if isinstance(att.get(key), str) and att[key].strip():
                        return str(att[key])
    return None


def _message(
    msg: dict[str, Any], channel: str, users: Mapping[str, str], where: str
) -> NativeRecord | None:
    if msg.get("type") != "message" or msg.get("subtype") in SKIPPED_SUBTYPES:
        return None
    ts, posted = ts_parts(f"{where}.ts", msg.get("ts"))
    rec: NativeRecord = {
        "kind": "chat_message",
        "id": f"slack-{channel}-{ts}",
        "channel": channel,
        "posted_at": posted.isoformat().replace("+00:00", "Z"),
    }
    author = _author(msg, users)
    if author:
        rec["user"] = author
    text = _text(msg.get("text"), users) or _attachment_text(msg.get("attachments"))
    if text:
        rec["text"] = text
    if msg.get("thread_ts") is not None:
        thread_ts, _ = ts_parts(f"{where}.thread_ts", msg.get("thread_ts"))
        rec["thread"] = f"slack-{channel}-{thread_ts}"
    return rec


def parse_path(path: Path) -> list[NativeRecord]:
    if not path.is_dir():
        raise PayloadError(
            NAME, str(path), "expected the directory of an unzipped Slack export (unzip it first)"
        )
    users = _users(path)
    records: list[NativeRecord] = []
    for channel in _channels(path):
        folder = path / channel
        if not folder.is_dir():
            continue  # a channel with no messages in the export
        for day in sorted(p for p in folder.iterdir() if _DAY.match(p.name)):
            rel = str(day.relative_to(path))
            for i, msg in enumerate(_list_of_objects(_load(day, path), rel)):
                rec = _message(msg, channel, users, f"{rel}[{i}]")
                if rec is not None:
                    records.append(rec)
    return records


def parse(body: bytes, headers: Mapping[str, str]) -> list[NativeRecord]:
    raise PayloadError(
        NAME,
        "",
        "slack has no webhook receiver; import an unzipped export with "
        "`opsledger import --from slack DIR`",
        404,
    )


CONNECTOR = register(
    Connector(NAME, parse, patch=False, description="Slack workspace export (directory)",
              parse_path=parse_path)
)
