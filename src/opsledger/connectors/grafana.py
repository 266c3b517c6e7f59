"""Grafana unified alerting webhook contact point (payload version 1).

Grafana's notification has Alertmanager's shape (Grafana embeds Alertmanager), so an alert
occurrence is, as for `alertmanager`, one firing episode: the same fingerprint and startsAt,
id `gf-<fingerprint>-<startsAt as epoch seconds>`. Grafana sends Go's zero time
`0001-01-01T00:00:00Z` as the endsAt of a firing alert: not ended. The fields Grafana adds
(silenceURL, dashboardURL, panelURL, imageURL, values, valueString, orgId, title, message)
are kept only in the raw payload: `values` change at every evaluation, and keeping them in
the record would turn each repeated notification into a replacement.

Grafana 12 can sign its webhooks (contact point setting "HMAC signature"): the hex
HMAC-SHA256 of the body with the shared secret in `X-Grafana-Alerting-Signature`, or of
`<timestamp>:<body>` when a timestamp header is configured (opsledger reads it from
`X-Grafana-Alerting-Timestamp`). With OPSLEDGER_GRAFANA_WEBHOOK_SECRET set, a signed request
needs no bearer token.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from opsledger.connectors.alertmanager import parse_notification
from opsledger.connectors.base import Connector, NativeRecord, hmac_sha256_hex, register

NAME = "grafana"
SIGNATURE = "X-Grafana-Alerting-Signature"
TIMESTAMP = "X-Grafana-Alerting-Timestamp"


def parse(body: bytes, headers: Mapping[str, str]) -> list[NativeRecord]:
    return parse_notification(NAME, "gf", "1", body)


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> bool | None:
    sent = headers.get(SIGNATURE)
    if not sent:
        return None
    stamp = headers.get(TIMESTAMP)
    signed = stamp.encode() + b":" + body if stamp else body
    expected = hmac_sha256_hex(secret, signed).encode()
    return hmac.compare_digest(expected, sent.strip().lower().encode("utf-8", "replace"))


CONNECTOR = register(
    Connector(
        NAME,
        parse,
        verify=verify,
        description="Grafana unified alerting webhook contact point v1",
    )
)
