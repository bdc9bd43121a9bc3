"""ECHONET Lite storage battery object (class 0x027D) backed by a simulated battery (U1, C1).

:func:`battery_object` maps a :class:`~drready.device.battery.SimulatedBattery` onto class
0x027D instance 01, the way :func:`~drready.echonet.objects.water_heater_object` maps the water
heater onto 0x026B: a table of :class:`~drready.echonet.objects.PropertySlot` whose values go
through the one MRA codec (:mod:`drready.echonet.values`), so every Set is validated against the
published schema. :func:`battery_node` puts it behind a node profile — alone, or next to a
water heater on the same node (one home: EcoCute + battery). No change to the node was needed:
:class:`~drready.echonet.node.EchonetNode` serves any list of objects.

Properties (MRA Release R; every property whose Get, Set or INF is *required* is there)
-----------------------------------------------------------------------------------------
=========  ==================================================================================
EPC        value
=========  ==================================================================================
0x80       operation status: ON (0x30)
0x81       installation location (settable, announced)
0x82/0x8A  Release R / maker code;  0x83 identification = the battery's device id
0x88/0x89  fault: none (0x42 / 0x0000)
0x8C       product code ``DRREADY-BAT1``
0x97/0x98  current time / date of the battery's clock (Asia/Tokyo)
0xA0/0xA1  AC effective capacity, charging ``(E_max − E_min) / η_c`` / discharging
           ``(E_max − E_min) · η_d`` [Wh]; 0xA2/0xA3 the same (no ageing is modelled)
0xA4/0xA5  AC chargeable ``(E_max − E) / η_c`` / dischargeable ``(E − E_min) · η_d`` energy now
0xA8/0xA9  AC cumulative charged / discharged energy [0.001 kWh]
0xAA/0xAB  AC charge / discharge amount setting: stored and announced, **not acted on** (the
           controller commands power, 0xEB/0xEC; an energy target is outside U1)
0xC1/0xC2  charging / discharging method: ``maximum`` (rated power) or ``designatedPower``
           (0xEB / 0xEC); other methods are refused
0xC8/0xC9  min / max charging, discharging power: 0 and the rated AC power [W]
0xCF       working operation status from the power now: charging / discharging / standby
           (announced when it changes, also when a bound stops the battery)
0xD0       rated electric energy (DC) = capacity [Wh]
0xD3       measured instantaneous AC power [W], + charging, − discharging
0xD6/0xD8  cumulative discharged / charged energy [0.001 kWh] (the AC meter, like 0xA9/0xA8)
0xDA       operation mode setting: rapidCharging (rated power), charging, discharging, standby;
           other modes are refused (SetC_SNA). Get returns the setting, 0xCF the actual state
0xDB       system interconnection: reverse power flow acceptable (0x00)
0xE2/0xE4  remaining stored energy (DC) [Wh] / state of charge [%] of capacity
0xE6       battery type: lithium-ion (0x04)
0xEB/0xEC  charging / discharging power setting [W], 0…the rated power (above: refused)
=========  ==================================================================================

The battery's setpoint is ``+0xEB`` (charging, designated power), the rated charging power
(rapidCharging or method ``maximum``), ``−0xEC`` (discharging), or 0 (standby); it is re-applied
whenever 0xDA, 0xEB, 0xEC, 0xC1 or 0xC2 is set. The object starts in standby with 0xEB / 0xEC
at the rated powers and both methods ``designatedPower`` (and puts the battery in standby).

References
----------
ECHONET Consortium, "Machine Readable Appendix" V1.3.0, Release R, ``0x027D.json`` (shipped in
``drready/data/echonet_mra``): EPCs, access rules, formats and the note on 0xDA ("the value you
get with this property is the value you set; get actualOperationMode for the current status").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from zoneinfo import ZoneInfo

from drready.device.battery import BatteryState, SimulatedBattery
from drready.domain import DEFAULT_TZ
from drready.echonet.errors import PropertyValueError
from drready.echonet.frame import EOJ
from drready.echonet.mra import Access, class_spec
from drready.echonet.node import EchonetNode
from drready.echonet.objects import (
    STANDARD_VERSION_R,
    EchonetObject,
    Getter,
    PropertySlot,
    Setter,
    node_profile,
    water_heater_object,
)
from drready.echonet.propmap import encode_property_map
from drready.echonet.values import decode_value

__all__ = [
    "BATTERY_CLASS",
    "MODE_CODES",
    "PRODUCT_CODE",
    "battery_node",
    "battery_object",
]

BATTERY_CLASS: Final = 0x027D
PRODUCT_CODE: Final = b"DRREADY-BAT1"
"""0x8C, 12 ASCII bytes."""
MODE_CODES: Final = {"rapidCharging": 0x41, "charging": 0x42, "discharging": 0x43, "standby": 0x44}
"""Operation modes (0xDA) the object accepts."""
_STATE_CODE: Final = {
    BatteryState.CHARGING: 0x42,
    BatteryState.DISCHARGING: 0x43,
    BatteryState.STANDBY: 0x44,
}
_METHODS: Final = {"maximum": 0x01, "designatedPower": 0x03}
_SETTING_EPCS: Final = frozenset({0x81, 0xAA, 0xAB, 0xC1, 0xC2, 0xDA})
_MAX_WH: Final = 999_999_999


def _wh(kwh: float) -> int:
    return min(max(round(kwh * 1000.0), 0), _MAX_WH)


def _counter_kwh(kwh: float) -> float:
    """A cumulative counter for a ``uint32 × 0.001 kWh`` EPC (wraps like a meter)."""
    return (round(kwh * 1000.0) % (_MAX_WH + 1)) / 1000.0


def battery_object(
    battery: SimulatedBattery,
    maker_code: bytes,
    instance: int = 1,
    *,
    tz: str = DEFAULT_TZ,
    notify: Callable[[set[int]], None] | None = None,
) -> EchonetObject:
    """Class 0x027D backed by ``battery`` (see the module table).

    ``notify`` is called with the EPCs of settings that changed (0xDA, 0xC1, …) so that the
    node can announce them.
    """
    spec_of = class_spec(BATTERY_CLASS).properties.get
    zone = ZoneInfo(tz)
    obj = EchonetObject(EOJ(0x02, 0x7D, instance))
    spec = battery.spec
    max_charge_w = round(spec.max_charge_kw * 1000.0)
    max_discharge_w = round(spec.max_discharge_kw * 1000.0)
    state: dict[str, Any] = {
        "location": bytes([0x00]),
        "mode": MODE_CODES["standby"],
        "charge_w": max_charge_w,
        "discharge_w": max_discharge_w,
        "charge_method": _METHODS["designatedPower"],
        "discharge_method": _METHODS["designatedPower"],
        "target_charge": "noSetting",
        "target_discharge": "noSetting",
    }

    def slot(epc: int, get: Getter, set_: Setter | None = None) -> None:
        s = spec_of(epc)
        if s is not None and set_ is not None and s.set is Access.NOT_APPLICABLE:
            raise ValueError(f"EPC 0x{epc:02X} is read-only in the MRA")
        announce = s is not None and s.inf is Access.REQUIRED
        obj.add(PropertySlot(epc, s, get=get, set=set_, announce=announce))

    def decoded(epc: int, edt: Any) -> Any:
        s = spec_of(epc)
        assert s is not None
        return decode_value(s, bytes(edt))

    def setpoint_kw() -> float:
        mode = state["mode"]
        if mode == MODE_CODES["rapidCharging"] or (
            mode == MODE_CODES["charging"] and state["charge_method"] == _METHODS["maximum"]
        ):
            return spec.max_charge_kw
        if mode == MODE_CODES["charging"]:
            return float(state["charge_w"]) / 1000.0
        if mode == MODE_CODES["discharging"]:
            if state["discharge_method"] == _METHODS["maximum"]:
                return -spec.max_discharge_kw
            return -float(state["discharge_w"]) / 1000.0
        return 0.0

    def changed(*epcs: int) -> None:
        battery.set_power_kw(setpoint_kw())
        if notify is not None and epcs:
            notify(set(epcs) & _SETTING_EPCS)

    def setter(epc: int, key: str, check: Callable[[Any], Any]) -> Setter:
        def apply(edt: Any) -> None:
            value = check(decoded(epc, edt))
            old = state[key]
            state[key] = value
            try:
                changed(*((epc,) if value != old else ()))
            except ValueError as err:  # the battery refused: keep the old setting
                state[key] = old
                raise PropertyValueError(epc, str(err)) from err

        return apply

    def one_of(epc: int, allowed: dict[str, int]) -> Callable[[Any], int]:
        def check(name: Any) -> int:
            if name not in allowed:
                raise PropertyValueError(epc, f"{name!r} is not supported, use one of {allowed}")
            return allowed[str(name)]

        return check

    def power_w(epc: int, limit_w: int) -> Callable[[Any], int]:
        def check(watts: Any) -> int:
            if not isinstance(watts, int) or not 0 <= watts <= limit_w:
                raise PropertyValueError(epc, f"{watts!r} W is outside 0–{limit_w} W")
            return watts

        return check

    def location(edt: Any) -> None:
        if bytes(edt) != state["location"]:
            state["location"] = bytes(edt)
            if notify is not None:
                notify({0x81})

    def now_local() -> Any:
        return battery.clock.now().astimezone(zone)

    # super class
    slot(0x80, lambda: "true")
    slot(0x81, lambda: state["location"], location)
    slot(0x82, lambda: STANDARD_VERSION_R)
    slot(0x83, lambda: battery.device_id.to_echonet_id())
    slot(0x88, lambda: "false")
    slot(0x89, lambda: "noFault")
    slot(0x8A, lambda: maker_code)
    slot(0x8C, lambda: PRODUCT_CODE)
    slot(0x97, lambda: f"{now_local():%H:%M}")
    slot(0x98, lambda: now_local().date())

    # capacities and energies (AC unless noted)
    slot(0xA0, lambda: _wh(spec.usable_kwh / spec.charge_efficiency))
    slot(0xA1, lambda: _wh(spec.usable_kwh * spec.discharge_efficiency))
    slot(0xA2, lambda: _wh(spec.usable_kwh / spec.charge_efficiency))
    slot(0xA3, lambda: _wh(spec.usable_kwh * spec.discharge_efficiency))
    slot(0xA4, lambda: _wh(max(spec.soc_max_kwh - battery.soc_kwh, 0.0) / spec.charge_efficiency))
    slot(
        0xA5, lambda: _wh(max(battery.soc_kwh - spec.soc_min_kwh, 0.0) * spec.discharge_efficiency)
    )
    slot(0xA8, lambda: _counter_kwh(battery.cumulative_charged_kwh))
    slot(0xA9, lambda: _counter_kwh(battery.cumulative_discharged_kwh))
    slot(0xAA, lambda: state["target_charge"], setter(0xAA, "target_charge", lambda v: v))
    slot(0xAB, lambda: state["target_discharge"], setter(0xAB, "target_discharge", lambda v: v))
    slot(0xD0, lambda: _wh(spec.capacity_kwh))
    slot(0xD6, lambda: _counter_kwh(battery.cumulative_discharged_kwh))
    slot(0xD8, lambda: _counter_kwh(battery.cumulative_charged_kwh))
    slot(0xE2, lambda: _wh(battery.soc_kwh))
    slot(0xE4, lambda: min(max(round(100.0 * battery.soc_share), 0), 100))
    slot(0xE6, lambda: "lib")

    # power ratings, settings and the measured power
    slot(0xC8, lambda: {"minValue": 0, "maxValue": max_charge_w})
    slot(0xC9, lambda: {"minValue": 0, "maxValue": max_discharge_w})
    slot(
        0xC1,
        lambda: state["charge_method"],
        setter(0xC1, "charge_method", one_of(0xC1, _METHODS)),
    )
    slot(
        0xC2,
        lambda: state["discharge_method"],
        setter(0xC2, "discharge_method", one_of(0xC2, _METHODS)),
    )
    slot(0xCF, lambda: _STATE_CODE[battery.state])
    slot(0xD3, lambda: round(battery.power_kw * 1000.0))
    slot(0xDA, lambda: state["mode"], setter(0xDA, "mode", one_of(0xDA, MODE_CODES)))
    slot(0xDB, lambda: "reversePowerFlowAcceptable")
    slot(0xEB, lambda: state["charge_w"], setter(0xEB, "charge_w", power_w(0xEB, max_charge_w)))
    slot(
        0xEC,
        lambda: state["discharge_w"],
        setter(0xEC, "discharge_w", power_w(0xEC, max_discharge_w)),
    )

    def map_getter(fn: Callable[[], tuple[int, ...]]) -> Getter:
        return lambda: encode_property_map(fn())

    for epc, fn in ((0x9D, obj.announce_map), (0x9E, obj.set_map), (0x9F, obj.get_map)):
        obj.add(PropertySlot(epc, spec_of(epc), get=map_getter(fn)))
    battery.set_power_kw(setpoint_kw())
    return obj


def battery_node(
    address: str,
    battery: SimulatedBattery,
    *,
    heater: Any = None,
    allow_any_address: bool = False,
    multicast: bool = True,
    rate_per_s: float = 20_000.0,
) -> EchonetNode:
    """A node on ``address`` serving ``battery`` as 0x027D01 (and ``heater`` as 0x026B01).

    The node profile's identification number is the heater's when there is one (a heater node
    with a battery added), else the battery's. Changes of the battery's working state (0xCF),
    of its settings and of the heater's announced values are sent as INF.
    """
    maker = bytes.fromhex(battery.device_id.maker_code)
    holder: dict[str, EchonetNode] = {}

    def announce_battery(epcs: set[int]) -> None:
        node = holder.get("node")
        if node is not None and epcs:
            node.announce(battery_obj, epcs)

    battery_obj = battery_object(battery, maker, notify=announce_battery)
    objects = [battery_obj]
    identification = battery.device_id.to_echonet_id()
    heater_obj: EchonetObject | None = None
    if heater is not None:
        heater_obj = water_heater_object(heater, bytes.fromhex(heater.device_id.maker_code))
        objects.insert(0, heater_obj)
        identification = heater.device_id.to_echonet_id()
    profile = node_profile(maker, identification, [o.eoj for o in objects])
    node = EchonetNode(
        address,
        [profile, *objects],
        allow_any_address=allow_any_address,
        multicast=multicast,
        rate_per_s=rate_per_s,
    )
    holder["node"] = node
    battery.on_change = lambda names: announce_battery({0xCF} if "state" in names else set())
    if heater is not None and heater_obj is not None:
        obj = heater_obj

        def heater_changed(names: set[str]) -> None:
            node.announce_changes(obj)  # every EPC of 0x9D whose value changed (EL-M3)

        heater.on_change = heater_changed
    return node
