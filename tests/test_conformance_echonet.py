"""E1 conformance checker, ECHONET Lite half: our node passes, broken fixtures fail (E1, C1, F1–F6).

Each broken fixture wraps one property of our own water heater object (or the node's frame
handling) so that it violates exactly one rule; the checker, which sees only the wire, must
report FAIL for exactly the checks that rule breaks.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from drready.cli.conformance import echonet_conformance_command, render_report
from drready.echonet.frame import ESV, Frame, decode_frame, encode_frame
from drready.echonet.node import EchonetNode
from drready.echonet.objects import EchonetObject, PropertySlot
from drready.evaluation.conformance import Check, Report, Verdict
from drready.evaluation.conformance_echonet import (
    HORIZON_F0_CHECK,
    HORIZON_F3_CHECK,
    LEVEL_CHECK,
    MAKER_MAPS_CHECK,
    MALFORMED_F0_CHECK,
    PORT_CHECK,
    check_echonet,
    level_of,
)
from tests.echonet_helpers import HEATER, make_node

READ_BACK = "Get 0xCA reads back 0x0D"
REPLAN = "re-plan after a shift request"
OUT_OF_RANGE = "out-of-range 0xCA = 0x20 refused with SetC_SNA"
SAME_ID = "0x83 equals the node profile's 0x83"
POWER = "measured power 0x84 and cumulative energy 0x85"
CONSISTENT = "0xCB/0xCC consistent"
UNKNOWN = "Get of unknown EPC 0xFF → Get_SNA, PDC 0"


def _heater_obj(node: EchonetNode) -> EchonetObject:
    return next(o for o in node.core.objects if o.eoj == HEATER)


def _ca_ignores_value(node: EchonetNode, heater: Any) -> None:
    slot = _heater_obj(node).slots[0xCA]
    slot.set = lambda value: None  # answers Set_Res, changes nothing


def _ca_accepts_0x20(node: EchonetNode, heater: Any) -> None:
    obj = _heater_obj(node)
    old = obj.slots[0xCA]
    real_set = old.set
    assert real_set is not None

    def setter(value: Any) -> None:
        if bytes(value) != b"\x20":  # 0x20 is "accepted" and ignored
            real_set(value)

    obj.add(PropertySlot(0xCA, None, get=old.get, set=setter, announce=True, raw_validate=bytes))


def _id_mismatch(node: EchonetNode, heater: Any) -> None:
    other = b"\xfe\x00\x00\x05" + b"OTHER-SERIAL\x00"
    _heater_obj(node).slots[0x83].get = lambda: other


def _energy_decreasing(node: EchonetNode, heater: Any) -> None:
    counter = [5000]

    def get() -> bytes:
        counter[0] -= 10
        return counter[0].to_bytes(4, "big")

    _heater_obj(node).slots[0x85].get = get


def _cb_too_large(node: EchonetNode, heater: Any) -> None:
    _heater_obj(node).slots[0xCB].get = lambda: (50_000).to_bytes(4, "big") * 4


def _get_sna_as_res(node: EchonetNode, heater: Any) -> None:
    handle = node.core.handle

    def patched(data: bytes, limit_bytes: int | None = None) -> list[bytes]:
        out = []
        for raw in handle(data, limit_bytes):
            f = decode_frame(raw)
            if f.esv == ESV.GET_SNA:
                f = Frame(f.tid, f.seoj, f.deoj, int(ESV.GET_RES), f.properties)
            out.append(encode_frame(f))
        return out

    node.core.handle = patched  # type: ignore[method-assign]


def _f3_answers_any_window(node: EchonetNode, heater: Any) -> None:
    # 0xF3 answers an envelope (all zero) even for a window the unit cannot evaluate
    real = _heater_obj(node).slots[0xF3].get
    assert real is not None

    def get() -> bytes:
        try:
            return bytes(real())
        except ValueError:
            return bytes(10)

    _heater_obj(node).slots[0xF3].get = get


def _f0_takes_anything(node: EchonetNode, heater: Any) -> None:
    # every 0xF0 answered Set_Res and dropped: neither refused nor answered in 0xF1
    slot = _heater_obj(node).slots[0xF0]
    slot.raw_validate = lambda edt: edt
    slot.set = lambda value: None


def _answers_source_port(node: EchonetNode, heater: Any) -> None:
    # answers to the request's source port instead of 3610 (installed-base bug, EL-T1)
    def received(data: bytes, addr: tuple[str, int]) -> None:
        endpoint = node.endpoint
        assert endpoint is not None
        for out in node.core.handle(data):
            endpoint.sendto(out, addr)

    node._received = received  # type: ignore[method-assign]


Fixture = Callable[[EchonetNode, Any], None]

BROKEN: list[tuple[str, Fixture, set[str]]] = [
    # an ignored shift time is seen twice: no read-back, and the plan 0xF4 does not change
    ("ca_ignores_value", _ca_ignores_value, {READ_BACK, REPLAN}),
    ("ca_accepts_0x20", _ca_accepts_0x20, {OUT_OF_RANGE}),
    ("id_mismatch", _id_mismatch, {SAME_ID}),
    ("energy_decreasing", _energy_decreasing, {POWER}),
    ("cb_too_large", _cb_too_large, {CONSISTENT}),
    # a node that never answers Get_SNA breaks both checks that expect one
    ("get_sna_as_res", _get_sna_as_res, {UNKNOWN, HORIZON_F3_CHECK}),
    ("f0_takes_anything", _f0_takes_anything, {MALFORMED_F0_CHECK, HORIZON_F0_CHECK}),
    ("answers_source_port", _answers_source_port, {PORT_CHECK}),
    ("f3_answers_any_window", _f3_answers_any_window, {HORIZON_F3_CHECK}),
]


async def _probe(
    address: str, fixture: Fixture | None = None, profile: str = "dr-ready", **kw: Any
) -> tuple[Report, Any]:
    node, heater = make_node(address, profile=profile)
    if fixture is not None:
        fixture(node, heater)
    await node.start()
    try:
        report = await check_echonet(address, power_interval_s=0.1, **kw)
    finally:
        await node.close()
    return report, heater


def _fails(report: Report) -> set[str]:
    return {c.name for c in report.checks if c.verdict is Verdict.FAIL}


def test_our_node_passes_and_is_restored() -> None:
    report, heater = asyncio.run(_probe("127.0.0.50"))
    assert _fails(report) == set(), report.to_json(indent=2)
    assert report.exit_code == 0
    reqs = {c.requirement for c in report.checks}
    assert reqs == {"C1", "F1", "F2", "F3", "F4", "F5", "F6", "E1"}
    assert level_of(report) == "dr-ready"
    assert report.checks[-1].evidence[0].startswith("dr-ready")
    assert all(c.evidence for c in report.checks)
    # what the probe changed is put back
    assert heater.shift_time(1) is None
    assert heater.energy_shift_participation is False


@pytest.mark.parametrize(
    ("address", "name", "fixture", "expected"),
    [(f"127.0.0.{61 + i}", n, f, e) for i, (n, f, e) in enumerate(BROKEN)],
    ids=[b[0] for b in BROKEN],
)
def test_broken_fixture_fails_exactly_its_check(
    address: str, name: str, fixture: Fixture, expected: set[str]
) -> None:
    report, _ = asyncio.run(_probe(address, fixture))
    assert _fails(report) - {LEVEL_CHECK} == expected, f"{name}: {report.to_json(indent=2)}"
    assert report.exit_code == 1


def test_without_measured_power_and_plan_is_not_observable() -> None:
    def strip(node: EchonetNode, heater: Any) -> None:
        obj = _heater_obj(node)
        for epc in (0x84, 0x85, 0xF4):
            del obj.slots[epc]

    report, _ = asyncio.run(_probe("127.0.0.57", strip))
    # a unit of a maker implementing the profile must list all of 0xF0–0xF4 (EL-M2)
    assert _fails(report) == {MAKER_MAPS_CHECK}
    by_req = {(c.requirement, c.verdict) for c in report.checks}
    assert ("F5", Verdict.NOT_OBSERVABLE) in by_req
    assert ("F4", Verdict.NOT_OBSERVABLE) in by_req
    f5 = next(c for c in report.checks if c.requirement == "F5")
    assert "estimated only" in f5.evidence[0]
    f3 = next(c for c in report.checks if c.requirement == "F3")
    assert f3.verdict is Verdict.PASS
    assert "only through the 0xCA read-back" in f3.evidence[0]


@pytest.mark.parametrize("profile", ["standard", "standard-single"])
def test_a_standard_only_node_reaches_the_standard_level(profile: str) -> None:
    address = "127.0.0.49" if profile == "standard" else "127.0.0.48"
    report, heater = asyncio.run(_probe(address, profile=profile))
    assert _fails(report) == set(), report.to_json(indent=2)
    assert level_of(report) == "standard"
    level = report.checks[-1]
    assert (level.requirement, level.name, level.verdict) == ("E1", LEVEL_CHECK, Verdict.PASS)
    assert level.evidence[0].startswith("standard: ")
    verdicts = {c.name: c.verdict for c in report.checks}
    assert verdicts["maker potential 0xF2/0xF3 for a 2 h window"] is Verdict.NOT_OBSERVABLE
    assert verdicts[MALFORMED_F0_CHECK] is Verdict.NOT_OBSERVABLE
    assert verdicts[MAKER_MAPS_CHECK] is Verdict.PASS and verdicts[PORT_CHECK] is Verdict.PASS
    assert heater.shift_time(1) is None  # restored


def test_a_node_that_fails_the_standard_shift_reaches_no_level() -> None:
    report, _ = asyncio.run(_probe("127.0.0.47", _ca_ignores_value))
    assert level_of(report) == "none" and LEVEL_CHECK in _fails(report)


def test_silent_node_fails_c1() -> None:
    report = asyncio.run(check_echonet("127.0.0.58", timeout_s=0.05, retries=0))
    assert [c.requirement for c in report.checks] == ["C1"]
    assert report.exit_code == 1


def test_report_json_and_render() -> None:
    report = Report(
        "t",
        [
            Check("C1", "a", Verdict.PASS, ["Get 0xE1 → 01 5E"]),
            Check("F5", "b", Verdict.NOT_OBSERVABLE, ["x", "y", "z"]),
        ],
    )
    data = json.loads(report.to_json())
    assert data["passed"] is True
    assert data["counts"] == {"pass": 1, "fail": 0, "not observable": 1}
    assert data["checks"][1]["verdict"] == "not observable"
    console = Console(record=True, width=120)
    render_report(report, console)
    text = console.export_text()
    assert "Get 0xE1 → 01 5E" in text
    assert "1 more" in text
    report.add("F2", "c", Verdict.FAIL)
    assert report.exit_code == 1


def test_command_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    async def serve_and_run(json_out: bool) -> int:
        node, _ = make_node("127.0.0.59")
        await node.start()
        try:
            return await asyncio.to_thread(
                echonet_conformance_command,
                "127.0.0.59",
                "127.0.0.1",
                json_out,
                Console(record=True, width=120),
            )
        finally:
            await node.close()

    assert asyncio.run(serve_and_run(True)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] is True and out["level"] == "dr-ready"
    assert out["target"].startswith("echonet 127.0.0.59")


def _doc_check_names(doc: str) -> set[str]:
    """The check names the conformance table of a profile names (``C1 · `name```)."""
    table = doc[doc.index("## 10. Conformance") :]
    names = set()
    for row in table.splitlines():
        cells = row.split("|")
        if len(cells) > 3 and "·" in cells[2] and cells[1].strip() != "rule":
            names |= set(re.findall(r"`([^`]+)`", cells[2]))
    return names - {"dr-ready", "standard", "none"}


def test_the_profile_maps_its_rules_to_checks_that_exist() -> None:
    # docs/profile-echonet-lite.md § 10 names only checks the checker reports on our node
    doc = (Path(__file__).parents[1] / "docs" / "profile-echonet-lite.md").read_text("utf-8")
    named = _doc_check_names(doc)
    report, _ = asyncio.run(_probe("127.0.0.46"))
    # the one check reported only when the node falls silent (test_silent_node_fails_c1)
    reported = {c.name for c in report.checks} | {"node answers every request"}
    assert named, "no check named in § 10"
    assert named <= reported, named - reported
    # and every check the checker runs is mapped to a rule
    assert reported - {LEVEL_CHECK} <= named, (reported - {LEVEL_CHECK}) - named
    silent = asyncio.run(check_echonet("127.0.0.45", timeout_s=0.05, retries=0))
    assert {c.name for c in silent.checks} <= named
