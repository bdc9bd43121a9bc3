"""UnitConfig and PlanInputs: the household, its unit and a plan's start, validated once for
every caller with messages naming the field and its range (F1, F3)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from drready.domain import DeviceId
from drready.planning.unit import PlanInputs, UnitConfig

DEVICE = DeviceId(maker_code="000005", serial="HW0000001")


@pytest.mark.parametrize(
    ("fields", "loc", "message"),
    [
        ({"persons": 0}, ("persons",), "persons must be finite and >= 1, got 0"),
        ({"persons": 5}, ("persons",), "persons must be <= 4, got 5 (allowed range: [1, 4])"),
        ({"persons": 2.5}, ("persons",), "valid integer"),
        ({"tank_l": 99.9}, ("tank_l",), "tank_l must be finite and >= 100, got 99.9"),
        ({"tank_l": 1000.5}, ("tank_l",), "(allowed range: [100, 1000])"),
        ({"tank_l": float("nan")}, ("tank_l",), "tank_l must be finite"),
        ({"device_id": {"maker_code": "zz", "serial": "X"}}, ("device_id", "maker_code"), "6"),
        ({"device_id": {"maker_code": "000005", "serial": "a b"}}, ("device_id", "serial"), ""),
    ],
)
def test_unit_config_rejects_values_outside_its_ranges(
    fields: dict[str, Any], loc: tuple[str, ...], message: str
) -> None:
    data = {"device_id": DEVICE, "persons": 4, "tank_l": 460.0, **fields}
    with pytest.raises(ValidationError) as info:
        UnitConfig.model_validate(data)
    first = info.value.errors()[0]
    assert first["loc"] == loc
    assert message in first["msg"]


@pytest.mark.parametrize(("persons", "tank_l"), [(1, 100.0), (4, 1000.0), (2, 370.0), (3, 460.0)])
def test_unit_config_accepts_the_range_ends_positionally_and_by_keyword(
    persons: int, tank_l: float
) -> None:
    positional = UnitConfig(DEVICE, persons, tank_l)
    keyword = UnitConfig(device_id=DEVICE, persons=persons, tank_l=tank_l)
    assert positional == keyword
    assert (positional.persons, positional.tank_l, positional.bathtub) == (persons, tank_l, True)
    assert positional.fleet().persons.tolist() == [persons]


def test_unit_config_is_frozen_and_round_trips_as_json() -> None:
    cfg = UnitConfig(DEVICE, 4, 460.0, bathtub=False)
    with pytest.raises(ValidationError):
        cfg.persons = 3  # type: ignore[misc]
    assert UnitConfig.model_validate_json(cfg.model_dump_json()) == cfg


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"confidence": 0.49}, "confidence", "(allowed range: [0.5, 0.999])"),
        ({"confidence": 1.0}, "confidence", "confidence must be <= 0.999, got 1.0"),
        (
            {"initial_heat_kwh": -0.1},
            "initial_heat_kwh",
            "initial_heat_kwh must be finite and >= 0",
        ),
        ({"initial_heat_kwh": 100.5}, "initial_heat_kwh", "(allowed range: [0, 100])"),
    ],
)
def test_plan_inputs_reject_values_outside_their_ranges(
    fields: dict[str, float], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        PlanInputs(**fields)
    first = info.value.errors()[0]
    assert first["loc"] == (field,)
    assert message in first["msg"]


def test_plan_inputs_defaults() -> None:
    assert PlanInputs() == PlanInputs(confidence=0.95, initial_heat_kwh=None)
    assert PlanInputs(confidence=0.5, initial_heat_kwh=0).initial_heat_kwh == 0.0
