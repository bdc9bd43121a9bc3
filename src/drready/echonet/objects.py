"""ECHONET Lite objects of a drready node: node profile and electric water heater (C1, F1–F6).

An :class:`EchonetObject` is a table of property slots. Each slot holds the MRA
:class:`~drready.echonet.mra.PropertySpec` (so every value is encoded, and every Set validated,
by the one schema-driven codec of :mod:`drready.echonet.values`), a getter returning the live
value, and optionally a setter. Getters may return raw EDT bytes for structured values the node
composes itself (instance lists, maker-specific EPCs). The property maps 0x9D/0x9E/0x9F are
derived from the table, so they can never disagree with what the object answers.

:func:`water_heater_object` maps a :class:`~drready.device.heater.SimulatedWaterHeater` onto
class 0x026B (the F1–F6 mapping of ``docs/profile-echonet-lite.md``): live status, tank and power
values, the standard energy-shift EPCs 0xC7–0xCF and the proposed maker-specific EPCs 0xF0–0xF4
(:mod:`drready.echonet.extension`). Without ``extension`` the object is what the installed base
offers — a **standard-only** unit: no 0xF0–0xF4 (absent from the property maps, so a Get or Set
of them is answered ``*_SNA``); without ``power_meter`` it has no 0x84/0x85 either, as many
installed units, and a controller must estimate power from 0xB2 × the seasonal rating.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from drready.domain import DEFAULT_TZ, DrResponse
from drready.domain.time import zone
from drready.echonet import extension as ext
from drready.echonet.errors import PropertyValueError
from drready.echonet.frame import EOJ, NODE_PROFILE
from drready.echonet.mra import Access, PropertySpec, class_spec
from drready.echonet.propmap import encode_property_map
from drready.echonet.values import encode_value, validate_edt

Getter = Callable[[], Any]
Setter = Callable[[Any], None]

STANDARD_VERSION_R = bytes([0x00, 0x00, ord("R"), 0x00])
"""0x82 of device objects: the Appendix release the object conforms to (Release R)."""
NODE_VERSION = bytes([0x01, 0x0E, 0x01, 0x00])
"""0x82 of the node profile: ECHONET Lite 1.14, specified message format."""
WATER_HEATER = 0x026B


@dataclass
class PropertySlot:
    """One EPC of an object: its spec (None for maker-specific EPCs), getter, setter, and
    whether a change is announced (INF). Setters of MRA properties receive the EDT after it
    passed :func:`~drready.echonet.values.validate_edt`; those of maker-specific EPCs receive
    what ``raw_validate`` parsed."""

    epc: int
    spec: PropertySpec | None
    get: Getter | None = None
    set: Setter | None = None
    announce: bool = False
    raw_validate: Callable[[bytes], Any] | None = None
    """For maker-specific EPCs: parses and range-checks a Set EDT, returning the value."""


@dataclass
class EchonetObject:
    """An ECHONET Lite object (EOJ) and its properties."""

    eoj: EOJ
    slots: dict[int, PropertySlot] = field(default_factory=dict)

    def add(self, slot: PropertySlot) -> None:
        self.slots[slot.epc] = slot

    def get_map(self) -> tuple[int, ...]:
        return tuple(sorted(e for e, s in self.slots.items() if s.get is not None))

    def set_map(self) -> tuple[int, ...]:
        return tuple(sorted(e for e, s in self.slots.items() if s.set is not None))

    def announce_map(self) -> tuple[int, ...]:
        return tuple(sorted(e for e, s in self.slots.items() if s.announce))

    def read(self, epc: int) -> bytes | None:
        """EDT of ``epc``, or None when it cannot be read (unknown EPC or not readable)."""
        slot = self.slots.get(epc)
        if slot is None or slot.get is None:
            return None
        value = slot.get()
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if slot.spec is None:
            return None
        return encode_value(slot.spec, value)

    def write(self, epc: int, edt: bytes) -> bool:
        """Apply a Set; False (and no change of state) when not settable or not valid."""
        slot = self.slots.get(epc)
        if slot is None or slot.set is None:
            return False
        try:
            if slot.spec is not None:
                validate_edt(slot.spec, edt)
                value: Any = edt  # setters of MRA properties take the validated EDT
            elif slot.raw_validate is not None:
                value = slot.raw_validate(edt)
            else:
                return False
            slot.set(value)
        except (PropertyValueError, ValueError):
            return False
        return True


def _maps(obj: EchonetObject, spec_of: Callable[[int], PropertySpec | None]) -> None:
    def map_getter(fn: Callable[[], tuple[int, ...]]) -> Getter:
        return lambda: encode_property_map(fn())

    for epc, fn in ((0x9D, obj.announce_map), (0x9E, obj.set_map), (0x9F, obj.get_map)):
        obj.add(PropertySlot(epc, spec_of(epc), get=map_getter(fn)))


def _specs(class_id: int) -> Callable[[int], PropertySpec | None]:
    props = class_spec(class_id).properties
    return props.get


def node_profile(maker_code: bytes, identification: bytes, instances: list[EOJ]) -> EchonetObject:
    """Node profile 0x0EF001 for a node holding ``instances``."""
    if len(maker_code) != 3 or len(identification) != 17:
        raise ValueError("maker_code must be 3 bytes and identification 17 bytes")
    spec = _specs(0x0EF0)
    obj = EchonetObject(NODE_PROFILE)
    classes = sorted({(e.class_group, e.class_code) for e in instances})

    def instance_list() -> bytes:
        return bytes([len(instances)]) + b"".join(e.to_bytes() for e in instances)

    fixed: dict[int, Getter] = {
        0x80: lambda: bytes([0x30]),
        0x82: lambda: NODE_VERSION,
        0x83: lambda: identification,
        0x8A: lambda: maker_code,
        0xD3: lambda: len(instances).to_bytes(3, "big"),
        0xD4: lambda: (len(classes) + 1).to_bytes(2, "big"),
        0xD5: instance_list,
        0xD6: instance_list,
        0xD7: lambda: bytes([len(classes)]) + b"".join(bytes(c) for c in classes),
    }
    for epc, getter in fixed.items():
        obj.add(PropertySlot(epc, spec(epc), get=getter, announce=epc in (0x80, 0xD5)))
    _maps(obj, spec)
    return obj


def water_heater_object(
    heater: Any,
    maker_code: bytes,
    instance: int = 1,
    *,
    extension: bool = True,
    power_meter: bool = True,
) -> EchonetObject:
    """Class 0x026B backed by a live :class:`~drready.device.heater.SimulatedWaterHeater`;
    ``extension``: the proposed maker-specific EPCs 0xF0–0xF4 (a DR-ready unit), else a
    standard-only unit; ``power_meter``: measured power 0x84 and energy 0x85."""
    spec = _specs(WATER_HEATER)
    tz = zone(DEFAULT_TZ)
    obj = EchonetObject(EOJ(0x02, 0x6B, instance))
    state = _HeaterObjectState()

    def on_off(flag: bool, yes: int = 0x41, no: int = 0x42) -> bytes:
        return bytes([yes if flag else no])

    def slot(epc: int, get: Getter, set_: Setter | None = None, announce: bool = False) -> None:
        s = spec(epc)
        if s is not None and set_ is not None and s.set is Access.NOT_APPLICABLE:
            raise ValueError(f"EPC 0x{epc:02X} is read-only in the MRA")
        obj.add(PropertySlot(epc, s, get=get, set=set_, announce=announce))

    def set_location(value: Any) -> None:
        state.location = bytes(value)

    # super class
    slot(0x80, lambda: bytes([0x30]), announce=True)
    slot(0x81, lambda: state.location, set_location, announce=True)
    slot(0x82, lambda: STANDARD_VERSION_R)
    slot(0x83, lambda: heater.device_id.to_echonet_id())
    if power_meter:
        slot(0x84, lambda: min(int(heater.instantaneous_power_w), 65533))
        slot(0x85, lambda: round(heater.cumulative_energy_kwh % 1_000_000, 3))
    slot(0x88, lambda: bytes([0x42]), announce=True)
    slot(0x8A, lambda: maker_code)

    # class 0x026B status and tank
    def set_auto(value: Any) -> None:
        code = _code(value)
        if code not in (0x41, 0x42, 0x43):
            raise PropertyValueError(0xB0, "EPC 0xB0: 0x41, 0x42 or 0x43")
        heater.automatic_heating = code == 0x41

    # INF required from Release I on (MRA): announced when it changes, whoever changed it
    slot(
        0xB0,
        lambda: bytes([0x41 if heater.automatic_heating else 0x43]),
        set_auto,
        announce=True,
    )
    slot(0xB2, lambda: on_off(heater.heating), announce=True)
    slot(
        0xC0,
        lambda: on_off(heater.daytime_reheating_permitted),
        lambda v: setattr(heater, "daytime_reheating_permitted", _code(v) == 0x41),
    )
    slot(0xC3, lambda: on_off(heater.supplying_hot_water), announce=True)

    def set_supply_temp(value: Any) -> None:
        celsius = value[0] if isinstance(value, bytes | bytearray) else int(value)
        try:
            heater.supply_temp_c = celsius
        except ValueError as err:  # outside what the unit supplies: SetC_SNA
            raise PropertyValueError(0xD1, str(err)) from err

    # tank (EL-S4): 0xE1 the hot water in the tank (the hot layer at the boil-up temperature),
    # 0xD8 the hot water that can still be supplied at the supply temperature setting 0xD1
    slot(0xD1, lambda: int(heater.supply_temp_c), set_supply_temp)
    slot(0xD8, lambda: min(int(heater.suppliable_hot_water_l), 65533))
    slot(0xE1, lambda: min(int(heater.hot_water_in_tank_l), 65533))
    slot(0xE2, lambda: min(int(heater.tank_capacity_l), 65533))
    winter, mid, summer = heater.rated_power_w
    slot(0xDB, lambda: int(winter))
    slot(0xDC, lambda: int(mid))
    slot(0xDD, lambda: int(summer))

    # standard energy shift (F1/F2/F3 within what the standard carries)
    slot(
        0xC7,
        lambda: bytes([0x01 if heater.energy_shift_participation else 0x00]),
        lambda v: setattr(heater, "energy_shift_participation", _code(v) == 0x01),
        announce=True,  # a controller learns when the user (or the MRA's clearing) ends it
    )
    slot(0xC8, lambda: int(heater.standard_start_hour))
    slot(0xC9, lambda: int(heater.number_of_energy_shifts))

    def shift_get(n: int) -> Getter:
        return lambda: bytes([heater.shift_time(n) or 0x00])

    def shift_set(n: int) -> Setter:
        def apply(value: Any) -> None:
            code = _code(value)
            if not heater.energy_shift_participation and code != 0x00:
                raise PropertyValueError(
                    0xCA if n == 1 else 0xCD, "participation (0xC7) is not set"
                )
            heater.set_shift_time(n, None if code == 0x00 else code)

        return apply

    def energies(n: int, per_hour: bool) -> Getter:
        def get() -> dict[str, int]:
            table = (
                heater.energy_per_hour_at_shift_wh(n)
                if per_hour
                else heater.expected_energy_at_shift_wh(n)
            )
            return {f"at{h:02d}00": int(v) for h, v in sorted(table.items())}

        return get

    slot(0xCA, shift_get(1), shift_set(1), announce=True)
    slot(0xCB, energies(1, per_hour=False))
    slot(0xCC, energies(1, per_hour=True))
    if heater.number_of_energy_shifts >= 2:
        slot(0xCD, shift_get(2), shift_set(2), announce=True)
        slot(0xCE, energies(2, per_hour=False))
        slot(0xCF, energies(2, per_hour=True))

    if extension:
        _maker_epcs(obj, heater, state, tz)
    _maps(obj, spec)
    return obj


def _maker_epcs(obj: EchonetObject, heater: Any, state: _HeaterObjectState, tz: ZoneInfo) -> None:
    """The proposed maker-specific EPCs 0xF0–0xF4 (what the standard cannot carry)."""

    def submit(value: Any) -> None:
        req: ext.DrRequestEdt = value
        now = heater.clock.now()
        state.requests += 1  # unique within a stopped clock
        minted = f"el-{now:%Y%m%d%H%M%S}-{state.requests}-{req.direction.value}"
        (resp,) = heater.submit_requests([req.to_request(minted, now)])
        state.last_request, state.last_response = req, resp

    def last_request() -> bytes:
        req = state.last_request
        return bytes(ext.DR_REQUEST_SIZE) if req is None else req.encode(tz)

    def last_response() -> bytes:
        req, resp = state.last_request, state.last_response
        if req is None or resp is None:
            return ext.NO_RESPONSE.encode()
        # echo the id the 0xF0 carried (none for the 13-byte form: the 5-byte answer)
        return ext.DrResponseEdt.from_response(resp, req.request_id).encode()

    def set_window(value: Any) -> None:
        state.window = value

    def window() -> bytes:
        w = state.window or _default_window(heater.clock.now(), tz)
        return ext.encode_window(w[0], w[1], tz)

    def potential() -> bytes:
        start, end = state.window or _default_window(heater.clock.now(), tz)
        env = heater.flexibility_envelope(start, end)
        return ext.encode_potential(
            ext.PotentialEdt(
                up_wh=ext.wh_from_kwh(env.up_kwh),
                down_wh=ext.wh_from_kwh(env.down_kwh),
                confidence=env.confidence,
                baseline_w=tuple(round(x.baseline_kw * 1000) for x in env.slots),
                min_w=tuple(round(x.min_kw * 1000) for x in env.slots),
                max_w=tuple(round(x.max_kw * 1000) for x in env.slots),
                cum_min_wh=tuple(ext.wh_from_kwh(x.cum_min_kwh) for x in env.slots),
                cum_max_wh=tuple(ext.wh_from_kwh(x.cum_max_kwh) for x in env.slots),
            )
        )

    def plan() -> bytes:
        p = heater.heating_plan()
        now = heater.clock.now()
        slots = [
            s
            for s in p.slots
            if s.start >= now.replace(minute=(now.minute // 30) * 30, second=0, microsecond=0)
        ]
        return ext.encode_plan(
            slots[0].start if slots else now,
            [ext.wh_from_kwh(s.energy_kwh) for s in slots],
            [ext.wh_from_kwh(s.stored_heat_kwh) for s in slots],
            tz,
        )

    obj.add(
        PropertySlot(
            ext.EPC_DR_REQUEST,
            None,
            get=last_request,
            set=submit,
            raw_validate=lambda edt: ext.decode_dr_request(edt, tz),
        )
    )
    obj.add(PropertySlot(ext.EPC_DR_RESPONSE, None, get=last_response))
    obj.add(
        PropertySlot(
            ext.EPC_POTENTIAL_WINDOW,
            None,
            get=window,
            set=set_window,
            raw_validate=lambda edt: ext.decode_window(edt, tz),
        )
    )
    obj.add(PropertySlot(ext.EPC_POTENTIAL, None, get=potential))
    obj.add(PropertySlot(ext.EPC_PLAN, None, get=plan))


@dataclass
class _HeaterObjectState:
    """What the 0x026B object keeps itself (the heater keeps the rest): installation location
    0x81, the potential window 0xF2, the last DR request 0xF0 with its answer 0xF1, and how
    many requests came (to name those that carry no id)."""

    location: bytes = b"\x00"
    window: tuple[datetime, datetime] | None = None
    last_request: ext.DrRequestEdt | None = None
    last_response: DrResponse | None = None
    requests: int = 0


def _code(value: Any) -> int:
    """EDT code of a decoded single-byte state (the codec may give a name or an int)."""
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | bytearray) and len(value) == 1:
        return value[0]
    raise PropertyValueError(0x00, f"unexpected state value {value!r}")


def _default_window(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Without a 0xF2 window: 10:00–14:00 of the coming day (after 10:00 today, tomorrow)."""
    local = now.astimezone(tz)
    day = local.date() if local.hour < 10 else (local + timedelta(days=1)).date()
    start = datetime(day.year, day.month, day.day, 10, tzinfo=tz)
    return start, start.replace(hour=14)
