"""The field protocol: MQTT topics and the pydantic payload of each kind of message.

`gridpilot/<site>/<device>/<kind>` carries one kind of message each:

- `telemetry`: readings with a per-device sequence number (QoS 0 by default);
- `state`: the device's settable state, retained, so a new subscriber knows it at once;
- `cmd`: a command with an id (the idempotency key) and an expiry (QoS 1);
- `ack`: the result of one command and the device state after it (QoS 1);
- `status`: retained online/offline, the offline one set as the client's last will.

The gateway's heartbeat goes to `gridpilot/<site>/gateway/heartbeat`; a device that
hears none for its `revert_s` falls back to its safe state. Every payload has a
version field `v`, so a later protocol can be told apart from this one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from grid.config import Ident
from grid.telemetry import UtcTime

ROOT = "gridpilot"
GATEWAY = "gateway"
SIM = "sim"
KINDS = ("telemetry", "state", "cmd", "ack", "status")
Kind = Literal["telemetry", "state", "cmd", "ack", "status"]
Action = Literal["set_relay", "set_power", "set_curtailment", "start", "stop"]

# Reading names carry their unit as a suffix (power_kw, ch2_current_a): the
# alphabet keeps them safe as measurement quantities, SQL values and InfluxDB tags.
Quantity = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


# A 32-bit counter: a device sending every second wraps after 136 years. Bigger
# numbers (2^63, 1e30) are refused outright, not taken as a new sequence.
MAX_SEQ = 2**32 - 1


class ProtocolError(ValueError):
    """A message that does not follow the protocol (bad topic, JSON or payload).

    `reason` is a short key the gateway counts rejects by (`not_json`, `schema`, ...)."""

    def __init__(self, message: str, reason: str = "schema") -> None:
        super().__init__(message)
        self.reason = reason


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1


class Telemetry(_Payload):
    device: Ident
    seq: Annotated[int, Strict(), Field(ge=0, le=MAX_SEQ)]
    time: UtcTime
    # Strict: "1.0" or true is a device bug, not a reading to convert. NaN, Infinity
    # and 1e400 are refused by pydantic-core itself, with no Python call per message.
    values: dict[Quantity, Annotated[float, Strict(), Field(allow_inf_nan=False)]]


class StatePayload(_Payload):
    device: Ident
    kind: str
    time: UtcTime
    state: dict[str, Any]


class Status(_Payload):
    device: Ident
    online: bool
    # Absent in a last will: the broker sends it long after it was written.
    time: UtcTime | None = None


class Heartbeat(_Payload):
    gateway: str
    seq: Annotated[int, Field(ge=0)]
    time: UtcTime


class Command(_Payload):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    device: Ident
    action: Action
    params: dict[str, float | int | bool] = {}
    issued_at: UtcTime
    expires_at: UtcTime
    principal: str | None = None


class Ack(_Payload):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    device: Ident
    result: Literal["ok", "rejected", "expired", "error"]
    detail: str = ""
    state: dict[str, Any] = {}
    time: UtcTime


class TopicParts(NamedTuple):
    site: str
    device: str
    kind: str


def topic(site: str, device: str, kind: str) -> str:
    if kind not in KINDS and not (device == GATEWAY and kind == "heartbeat"):
        raise ValueError(f"kind {kind!r} must be one of {', '.join(KINDS)}")
    return f"{ROOT}/{site}/{device}/{kind}"


def heartbeat_topic(site: str) -> str:
    return f"{ROOT}/{site}/{GATEWAY}/heartbeat"


def fault_topic(site: str) -> str:
    """Where `gridpilot sim fault` tells a running simulator what to break."""
    return f"{ROOT}/{site}/{SIM}/fault"


def site_filter(site: str, shared_group: str | None = None) -> str:
    """Every device message of a site; as an MQTT 5 shared subscription when grouped,
    so several gateways split the devices' messages between them."""
    base = f"{ROOT}/{site}/+/+"
    return f"$share/{shared_group}/{base}" if shared_group else base


def parse_topic(name: str) -> TopicParts:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != ROOT or not all(parts):
        raise ProtocolError(f"topic {name!r} is not {ROOT}/<site>/<device>/<kind>", "bad_topic")
    site, device, kind = parts[1:]
    if kind not in KINDS and (device, kind) != (GATEWAY, "heartbeat") and device != SIM:
        raise ProtocolError(f"topic {name!r}: unknown kind {kind!r}", "bad_topic")
    return TopicParts(site, device, kind)


P = TypeVar("P", bound=BaseModel)


def decode(model: type[P], payload: bytes | str) -> P:
    """Parse a payload into `model`; any fault becomes one `ProtocolError` line.

    Parsing and validating in one pass (pydantic's own JSON reader) is what keeps the
    gateway's ingest close to the bare MQTT rate."""
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        name = model.__name__
        if first["type"] == "json_invalid":
            reason = "too_deep" if "recursion" in first["msg"] else "not_json"
            raise ProtocolError(f"{name}: not JSON ({first['msg']})", reason) from None
        if first["type"] == "model_type" and not first["loc"]:
            got = type(first["input"]).__name__
            raise ProtocolError(f"{name}: want a JSON object, got {got}", "not_json") from None
        where = ".".join(str(p) for p in first["loc"]) or "(payload)"
        raise ProtocolError(f"{name}.{where}: {first['msg']}") from None


def encode(payload: BaseModel) -> bytes:
    return payload.model_dump_json(exclude_none=False).encode()


def unit_of(quantity: str) -> str:
    """The unit a reading's name ends in (`power_kw` -> kW); '' for flags and fractions."""
    for suffix, unit in _UNITS:
        if quantity.endswith(suffix):
            return unit
    return ""


_UNITS = (
    ("_eur_per_kwh", "EUR/kWh"),
    ("_kwh", "kWh"),
    ("_kw", "kW"),
    ("_hz", "Hz"),
    ("_a", "A"),
    ("_v", "V"),
    ("_c", "C"),
    ("_s", "s"),
)


def datetime_iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
