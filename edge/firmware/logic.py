"""Protocol and safety logic of the ESP12F relay board, as pure functions.

This file runs unchanged on MicroPython (the board) and on CPython (the tests and
the Python twin in edge/devices/relay_board.py), so it imports nothing and uses
only what both have: no datetime, no typing, no pydantic. Times are float seconds
since the Unix epoch; the board sets its clock by NTP at boot.
"""

PROTOCOL_VERSION = 1
ROOT = "gridpilot"


def topic(site, device, kind):
    return ROOT + "/" + site + "/" + device + "/" + kind


def heartbeat_topic(site):
    return ROOT + "/" + site + "/gateway/heartbeat"


# -- time as ISO 8601 text, without datetime ------------------------------------


def _days_from_civil(y, m, d):
    # Howard Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date.
    y = y - 1 if m <= 2 else y
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z):
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return (y + 1 if m <= 2 else y), m, d


def iso_utc(epoch_s):
    """'2026-01-05T12:00:00.250Z' for epoch seconds (millisecond resolution)."""
    ms_total = int(round(epoch_s * 1000))
    days, ms_of_day = divmod(ms_total, 86400000)
    y, m, d = _civil_from_days(days)
    secs, ms = divmod(ms_of_day, 1000)
    hh, rest = divmod(secs, 3600)
    mm, ss = divmod(rest, 60)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (y, m, d, hh, mm, ss, ms)


def parse_iso_utc(text):
    """Epoch seconds of an ISO 8601 time in UTC ('Z' or '+00:00'); ValueError otherwise."""
    if not isinstance(text, str) or len(text) < 19 or text[10] not in "T ":
        raise ValueError("time %r is not ISO 8601" % (text,))
    if text.endswith("Z"):
        body = text[:-1]
    elif text.endswith("+00:00"):
        body = text[:-6]
    else:
        raise ValueError("time %r must be UTC (end in Z or +00:00)" % (text,))
    y, mo, d = int(body[0:4]), int(body[5:7]), int(body[8:10])
    hh, mi, ss = int(body[11:13]), int(body[14:16]), int(body[17:19])
    frac = 0.0
    if len(body) > 19:
        if body[19] != ".":
            raise ValueError("time %r is not ISO 8601" % (text,))
        frac = float("0" + body[19:])
    return _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss + frac


# -- payloads ----------------------------------------------------------------------


def board_values(relays, powers_kw, voltage_v):
    """Readings of one telemetry message: per channel relay, power and current."""
    values = {"supply_voltage_v": round(voltage_v, 2)}
    for i in range(len(relays)):
        on = relays[i]
        power_kw = powers_kw[i] if on else 0.0
        n = str(i + 1)
        values["ch" + n + "_relay_on"] = 1 if on else 0
        values["ch" + n + "_power_kw"] = round(power_kw, 4)
        # Resistive loads on one phase: I = P / V.
        values["ch" + n + "_current_a"] = round(power_kw * 1000.0 / voltage_v, 3) if voltage_v > 1 else 0.0
    return values


def telemetry(device, seq, now_s, values):
    return {"v": PROTOCOL_VERSION, "device": device, "seq": seq, "time": iso_utc(now_s), "values": values}


def board_state(relays, reverted):
    return {"relays": [bool(r) for r in relays], "reverted": bool(reverted)}


def state_payload(device, kind, now_s, state):
    return {"v": PROTOCOL_VERSION, "device": device, "kind": kind, "time": iso_utc(now_s), "state": state}


def status(device, online, now_s=None):
    return {"v": PROTOCOL_VERSION, "device": device, "online": bool(online),
            "time": None if now_s is None else iso_utc(now_s)}


def ack(command_id, device, result, detail, state, now_s):
    return {"v": PROTOCOL_VERSION, "id": command_id, "device": device, "result": result,
            "detail": detail, "state": state, "time": iso_utc(now_s)}


# -- safety: the revert timer -------------------------------------------------------


def revert_due(last_heartbeat_s, now_s, revert_s):
    """True when the gateway has been silent for longer than `revert_s`.

    The board must be safe even when the gateway, the broker or the network is gone,
    so this is decided on the board, from its own clock."""
    return now_s - last_heartbeat_s > revert_s


def revert(relays, safe_state):
    """The relays after a revert: the site's safe state, or all off without one."""
    if safe_state is None:
        return [False] * len(relays)
    return [bool(s) for s in safe_state]


# -- commands ------------------------------------------------------------------------


class Executed:
    """Acks of recently executed commands by id: a repeated id gets the same ack back
    and does not actuate twice. Bounded, since the board has ~40 kB of RAM."""

    def __init__(self, size=32):
        self.size = size
        self.order = []
        self.acks = {}

    def get(self, command_id):
        return self.acks.get(command_id)

    def put(self, command_id, ack_payload):
        if command_id not in self.acks:
            self.order.append(command_id)
            if len(self.order) > self.size:
                del self.acks[self.order.pop(0)]
        self.acks[command_id] = ack_payload


def check_command(cmd, device, now_s):
    """(result, detail) for the envelope of a command: version, device and expiry.
    ('ok', '') means the action may be looked at."""
    if not isinstance(cmd, dict) or not isinstance(cmd.get("id"), str) or not cmd["id"]:
        return "rejected", "command has no id"
    if cmd.get("v") != PROTOCOL_VERSION:
        return "rejected", "protocol version %r not supported (want %d)" % (cmd.get("v"), PROTOCOL_VERSION)
    if cmd.get("device") != device:
        return "rejected", "command for %r reached %r" % (cmd.get("device"), device)
    try:
        expires_s = parse_iso_utc(cmd.get("expires_at"))
    except ValueError as exc:
        return "rejected", "expires_at: " + str(exc)
    if now_s > expires_s:
        return "expired", "expired %.1f s ago" % (now_s - expires_s)
    return "ok", ""


def apply_relay_command(cmd, relays):
    """(result, detail, relays after) of a set_relay command on the board."""
    if cmd.get("action") != "set_relay":
        return "rejected", "a relay board only does set_relay, not %r" % (cmd.get("action"),), relays
    params = cmd.get("params") or {}
    channel = params.get("channel")
    on = params.get("on")
    if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= len(relays):
        return "rejected", "params.channel = %r must be an integer 1..%d" % (channel, len(relays)), relays
    if not isinstance(on, bool):
        return "rejected", "params.on = %r must be true or false" % (on,), relays
    after = list(relays)
    after[channel - 1] = on
    return "ok", "channel %d %s" % (channel, "on" if on else "off"), after


def handle_relay_command(cmd, device, relays, reverted, now_s, executed):
    """(relays after, reverted after, ack payload, actuated) for one received command."""
    command_id = cmd.get("id") if isinstance(cmd, dict) else None
    if isinstance(command_id, str):
        seen = executed.get(command_id)
        if seen is not None:
            return relays, reverted, seen, False
    result, detail = check_command(cmd, device, now_s)
    after = relays
    if result == "ok":
        result, detail, after = apply_relay_command(cmd, relays)
    actuated = result == "ok"
    if actuated:
        # A command from a live gateway ends the reverted state.
        reverted = False
    payload = ack(command_id or "?", device, result, detail, board_state(after, reverted), now_s)
    if isinstance(command_id, str) and command_id:
        executed.put(command_id, payload)
    return after, reverted, payload, actuated
