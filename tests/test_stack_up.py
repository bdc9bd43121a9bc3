"""``drready stack up`` (issue 11 item 5): its parts in milliseconds.

Fast parts, against hand-computed cases: the state directory (where, modes, fallback), the
credentials (files 0600, registries that authenticate the secrets handed out), the order core
(plans of a day, the life of an order as input → actions tables), the supervisor (SIGTERM,
SIGKILL after the grace and the report of it, an early exit, a readiness timeout, a process
left in a child's group), the /proc readers, and the contract with the parties' commands: every
option the stack passes to a child exists in that child's ``--help``; the children's start
groups and the homes' unit profiles (issue 15: half DR-ready, half standard-only).

The acceptance run itself — ``drready stack up`` as a user runs it, its orders delivered, zero
DR-caused shortages, every child exiting 0 and nothing left behind — shares one two-day run
with the soak: ``tests/test_soak.py``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drready.cli import load_subcommand
from drready.domain import DEFAULT_TZ, Direction
from drready.domain.time import zone
from drready.security.operators import OperatorFile
from drready.security.tokens import ClientRegistry, TokenInvalidError, load_registry
from drready.sim.stack import (
    DASHBOARD_LOGIN_FILE,
    DASHBOARD_OPERATOR,
    OPERATORS_FILE,
    StackSettings,
    _Urls,
    answer_wait_s,
    child_specs,
    dashboard_operator,
    default_start,
    home_profile,
    stack_credentials,
    start_groups,
)
from drready.sim.stack_creds import OBSERVER, env_file_text, make_credentials
from drready.sim.stack_orders import (
    LAST_CALL,
    READ_EVERY,
    RETRY,
    OrderDriver,
    OrderDriverError,
    OrderPosted,
    OrderRead,
    OrderRefused,
    PlanState,
    PostOrder,
    PotentialMissing,
    PotentialRead,
    ReadOrder,
    ReadPotential,
    Tick,
    day_plans,
    plans_between,
)
from drready.sim.stack_procs import (
    ChildFailedError,
    ChildSpec,
    Supervisor,
    bound_udp,
    leftovers,
    listening_tcp,
    rss_kb,
)
from drready.sim.stack_state import new_run_dir, state_home

TZ = zone(DEFAULT_TZ)
REPO = Path(__file__).resolve().parents[1]


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 5, day, hh, mm, tzinfo=TZ)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------------------------ state directory
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"XDG_STATE_HOME": "/srv/state"}, "/srv/state/drready"),
        ({"XDG_STATE_HOME": ""}, "/home/u/.local/state/drready"),
        ({"XDG_STATE_HOME": "relative/state"}, "/home/u/.local/state/drready"),  # XDG: ignored
        ({}, "/home/u/.local/state/drready"),
    ],
)
def test_state_home_follows_xdg(env: dict[str, str], expected: str) -> None:
    assert state_home(env, home=Path("/home/u")).as_posix() == expected


def test_a_run_directory_is_private_and_new_each_time(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    now = at(14, 7, 5)
    first = new_run_dir("demo", env=env, now=now)
    second = new_run_dir("demo", env=env, now=now)
    assert first.fallback_reason is None
    assert first.path.parent == tmp_path / "state" / "drready" / "runs"
    assert first.path.name == f"2026-05-14T07-05-00-demo-{os.getpid()}"
    assert second.path.name == f"{first.path.name}-2"
    for directory in (first.path, first.path.parent, first.path.parent.parent):
        assert mode(directory) == 0o700
    assert mode(first.private_file("x/servicer.db")) == 0o600
    assert mode(first.path / "x") == 0o700
    assert mode(first.write_secret("k.env", b"A=1\n")) == 0o600


def test_a_state_home_inside_a_work_tree_falls_back_to_a_temporary_directory(
    tmp_path: Path,
) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    env = {"XDG_STATE_HOME": str(tmp_path / "repo" / "state")}
    run = new_run_dir("stack", env=env)
    try:
        assert run.fallback_reason is not None and "git work tree" in run.fallback_reason
        assert not run.path.is_relative_to(tmp_path / "repo")
        assert mode(run.path) == 0o700
    finally:
        run.path.rmdir()
    with pytest.raises(ValueError, match="inside the git work tree"):
        new_run_dir("stack", explicit=tmp_path / "repo" / "mine")
    explicit = new_run_dir("stack", explicit=tmp_path / "mine")
    assert explicit.path == tmp_path / "mine" and mode(explicit.path) == 0o700


def test_settings_refuse_a_state_dir_inside_the_repository() -> None:
    with pytest.raises(ValueError, match="git work tree"):
        StackSettings(state_dir=REPO / "stack-state")


# ------------------------------------------------------------------------------ credentials
def test_env_file_text_is_plain_key_value_lines() -> None:
    assert env_file_text({"A": "1", "B_C": "x-y_z"}) == "A=1\nB_C=x-y_z\n"
    for bad in ({"A": "two words"}, {"A": "x\ny"}, {"A-B": "1"}, {"A": "$HOME"}):
        with pytest.raises(ValueError):
            env_file_text(bad)


def test_credentials_are_private_and_authenticate(tmp_path: Path) -> None:
    run = new_run_dir("stack", explicit=tmp_path / "run")
    creds = make_credentials(
        run,
        {"dr-servicer": "bl", "maker-cloud": "ven"},
        party_env={
            "vtn": {"DRREADY_TOKEN_KEY": "vtn-env:DRREADY_TOKEN_KEY"},
            "maker-cloud": {"DRREADY_CLIENT_SECRET": "vtn:maker-cloud"},
            "op": {"WHO": "literal:operator"},
        },
    )
    for private in ("vtn/clients.toml", "certs/server-key.pem", "certs/ca-key.pem"):
        assert mode(run.path / private) == 0o600, private
    assert mode(run.path / "credentials") == 0o700
    assert (run.path / "credentials" / "maker-cloud.env").read_text() == (
        f"DRREADY_CLIENT_SECRET={creds.secrets['maker-cloud']}\n"
    )
    assert (run.path / "credentials" / "op.env").read_text() == "WHO=operator\n"
    assert mode(run.path / "credentials" / "vtn.env") == 0o600
    text = (run.path / "vtn" / "clients.toml").read_text()
    assert all(secret not in text for secret in creds.secrets.values())  # hashes only
    registry = load_registry(None, env=dict(creds.vtn_env))
    assert isinstance(registry, ClientRegistry)
    for cid in ("dr-servicer", "maker-cloud", OBSERVER):
        assert registry.authenticate(cid, creds.secrets[cid]).client_id == cid
    with pytest.raises(TokenInvalidError):
        registry.authenticate("maker-cloud", creds.secrets["dr-servicer"])
    observer = registry.authenticate(OBSERVER, creds.secrets[OBSERVER])
    assert sorted(observer.scopes) == ["read_all", "read_bl"]  # it can change nothing


# ------------------------------------------------------------------------------ order core
def test_the_day_plan_is_the_demo_day() -> None:
    up, down = day_plans(date(2026, 5, 14), run_id="r", up_share=0.6, down_share=0.5)
    assert (up.key, up.direction, up.start, up.end, up.share, up.size_at) == (
        "r-2026-05-14-up",
        Direction.UP,
        at(14, 10),
        at(14, 14),
        0.6,
        at(13, 20),  # the evening before: a day-ahead order, while shift times are open
    )
    assert (down.key, down.direction, down.start, down.end, down.share, down.size_at) == (
        "r-2026-05-14-down",
        Direction.DOWN,
        at(14, 17),
        at(14, 20),
        0.5,
        at(14, 13, 30),
    )


@pytest.mark.parametrize(
    ("first", "last", "keys"),
    [
        (at(14, 6), at(15, 12), ["r-2026-05-14-up", "r-2026-05-14-down"]),
        (at(14, 11), at(15, 21), ["r-2026-05-14-down", "r-2026-05-15-up", "r-2026-05-15-down"]),
        (at(14, 6), at(14, 19), ["r-2026-05-14-up"]),  # the evening window would not end
        (at(14, 21), at(15, 9), []),
    ],
)
def test_plans_between(first: datetime, last: datetime, keys: list[str]) -> None:
    plans = plans_between(first, last, run_id="r", up_share=0.6, down_share=0.6)
    assert [p.key for p in plans] == keys


def _driver() -> tuple[OrderDriver, Any, Any]:
    up, down = day_plans(date(2026, 5, 14), run_id="r", up_share=0.6, down_share=0.6)
    return OrderDriver([up, down]), up, down


def test_order_life_as_input_action_table() -> None:
    driver, up, down = _driver()
    table: list[tuple[Any, datetime, list[Any]]] = [
        (Tick(), at(13, 19), []),  # before 20:00 the evening before nothing is due
        (Tick(), at(13, 20), [ReadPotential(up)]),
        (Tick(), at(13, 20, 1), []),  # sizing: not asked twice
        (PotentialMissing(up.key, "404"), at(13, 20, 1), []),  # retried after RETRY
        (Tick(), at(13, 20, 1) + RETRY - timedelta(seconds=1), []),
        (Tick(), at(13, 20, 1) + RETRY, [ReadPotential(up)]),
        (PotentialRead(up.key, up_kwh=0.1, down_kwh=50.0), at(13, 20, 20), []),  # 0.06 kWh
        (Tick(), at(13, 20, 35), [ReadPotential(up)]),
        (PotentialRead(up.key, up_kwh=100.0, down_kwh=50.0), at(13, 20, 35), [PostOrder(up, 60.0)]),
        (OrderRefused(up.key, "503", final=False), at(13, 20, 35), [PostOrder(up, 60.0)]),
        (OrderPosted(up.key, "o-1"), at(13, 20, 36), []),
        (Tick(), at(13, 20, 36) + READ_EVERY, [ReadOrder("o-1")]),
        (OrderRead("o-1", {"status": "accepted"}), at(13, 21, 6), []),
        (Tick(), at(14, 13, 30), [ReadOrder("o-1"), ReadPotential(down)]),
        (PotentialRead(down.key, 100.0, 12.3456), at(14, 13, 30), [PostOrder(down, 7.407)]),
        (OrderRefused(down.key, "400 window.start: in the past"), at(14, 13, 31), []),
        (OrderRead("o-1", {"status": "settled"}), at(14, 21), []),
        (Tick(), at(14, 23), []),  # closed and given up: nothing more
    ]
    for event, now, expected in table:
        assert driver.handle(event, now) == expected, (event, now)
    report = {r["key"]: r for r in driver.report()}
    assert report[up.key]["id"] == "o-1" and report[up.key]["status"] == "settled"
    assert report[up.key]["driver_state"] == PlanState.CLOSED
    assert report[up.key]["requested_kwh"] == 60.0
    assert report[down.key]["driver_state"] == PlanState.GIVEN_UP
    assert report[down.key]["given_up_because"] == "refused"
    assert report[up.key]["given_up_because"] is None
    assert report[down.key]["notes"] == ["400 window.start: in the past"]
    assert driver.closing_reads() == [ReadOrder("o-1")]


def test_an_order_without_potential_is_given_up_at_the_last_call() -> None:
    driver, up, _ = _driver()
    assert driver.handle(Tick(), at(14, 7, 30)) == [ReadPotential(up)]
    assert driver.handle(PotentialMissing(up.key, "404"), at(14, 7, 30)) == []
    assert driver.handle(Tick(), up.start - LAST_CALL) == []
    (entry, _down) = driver.report()
    assert entry["driver_state"] == PlanState.GIVEN_UP and entry["id"] is None
    assert entry["notes"] == ["404", f"not placed by {(up.start - LAST_CALL).isoformat()}"]
    assert entry["given_up_because"] == "not_collected"


def test_steps_the_table_does_not_allow_raise() -> None:
    driver, up, _ = _driver()
    with pytest.raises(OrderDriverError, match="no step 'posted' from 'waiting'"):
        driver.handle(OrderPosted(up.key, "o-1"), at(14, 7))
    with pytest.raises(ValueError, match="unique"):
        OrderDriver([up, up])


# ------------------------------------------------------------------------------ supervisor
PY = sys.executable
IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
EXITS_ON_TERM = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); "
    "print('up', flush=True); time.sleep(60)"
)
LEAVES_A_CHILD = (
    "import signal, subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); "
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); time.sleep(60)"
)


def test_supervisor_stops_in_waves_and_reports_what_it_killed(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs", os.environ)
    sup.start(ChildSpec("base", [PY, "-c", EXITS_ON_TERM], stop_wave=0))
    sup.start(ChildSpec("stubborn", [PY, "-c", IGNORES_TERM], stop_wave=1))
    sup.start(ChildSpec("parent", [PY, "-c", LEAVES_A_CHILD], stop_wave=1))
    time.sleep(1.0)  # the children installed their handlers and the grandchild is up
    pids = sup.pids()
    assert sorted(pids) == ["base", "parent", "stubborn"]
    assert len(leftovers([pids["parent"]])) == 2  # the parent and its child, one group
    started = time.monotonic()
    exits = {e.name: e for e in sup.stop(grace_s=1.0)}
    took = time.monotonic() - started
    assert exits["stubborn"].killed and exits["stubborn"].exit_code == -signal.SIGKILL
    assert exits["parent"].exit_code == 0 and exits["parent"].killed  # its child had to go
    assert exits["base"].exit_code == 0 and not exits["base"].killed
    assert exits["base"].stop_s < 1.0
    assert 1.0 <= took < 4.0, took  # one grace for wave 1, base exits at once
    assert leftovers(pids.values()) == []
    assert mode(tmp_path / "logs" / "base.log") == 0o600
    assert (tmp_path / "logs" / "base.log").read_text() == "up\n"
    assert sup.stop() == list(exits.values())  # idempotent


def test_supervisor_notices_an_early_exit_and_a_child_never_ready(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs", os.environ)
    with pytest.raises(ChildFailedError, match=r"exited with 3.*\n.*boom"):
        sup.start(
            ChildSpec(
                "fails", [PY, "-c", "print('boom'); raise SystemExit(3)"], ready=lambda: False
            )
        )
    with pytest.raises(ChildFailedError, match="not ready within 0 s"):
        sup.start(
            ChildSpec("slow", [PY, "-c", EXITS_ON_TERM], ready=lambda: False, ready_timeout_s=0.3)
        )
    sup.start(ChildSpec("quits", [PY, "-c", "import time; time.sleep(0.2)"]))
    time.sleep(1.0)
    early = [e.name for e in sup.exited()]
    assert early == ["quits"]
    exits = {e.name: e for e in sup.stop(grace_s=2.0)}
    assert exits["fails"].early and exits["fails"].exit_code == 3
    assert exits["quits"].early and exits["quits"].exit_code == 0
    assert exits["slow"].exit_code == 0 and not exits["slow"].killed


def test_proc_readers_see_our_own_sockets_and_memory() -> None:
    assert rss_kb(os.getpid()) > 10_000  # a Python with numpy and pydantic loaded
    with socket.socket() as tcp:
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        assert listening_tcp([port]) == []
        tcp.listen()
        assert listening_tcp([port]) == [("127.0.0.1", port)]
    assert listening_tcp([port]) == []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.9.250", 0))
        port = udp.getsockname()[1]
        assert bound_udp(["127.0.9.250", "127.0.9.251"], port) == [("127.0.9.250", port)]
    assert bound_udp(["127.0.9.250"], port) == []


# ------------------------------------------------------------------------------ contract
def _options(argv: list[str]) -> tuple[list[str], list[str]]:
    """The sub-command words and the --options of a child's command line."""
    words = argv[3:]  # python -m drready.cli
    command = []
    for word in words:
        if word.startswith("-"):
            break
        command.append(word)
    return command, [w for w in words if w.startswith("--")]


@pytest.mark.parametrize("battery", [False, True])
def test_every_option_the_stack_passes_exists_in_the_childs_command(
    tmp_path: Path, battery: bool
) -> None:
    settings = StackSettings(homes=1, battery=battery, units=10, poll_s=5.0)
    run = new_run_dir("stack", explicit=tmp_path / "run")
    urls = _Urls("https://localhost:1", "https://localhost:2")
    creds = stack_credentials(settings, run, urls)
    specs = child_specs(settings, run, creds, urls, "{}")
    names = ["vtn", "home-1", *(["battery"] if battery else []), "cloud", "gateway", "servicer"]
    assert [s.name for s in specs] == names
    problems = []
    for spec in specs:
        command, options = _options(list(spec.argv))
        known = _help_options(command)
        if known is None:
            problems.append(f"{spec.name}: `drready {' '.join(command)}` does not exist")
            continue
        problems += [
            f"{spec.name}: {' '.join(command)} has no {o}" for o in options if o not in known
        ]
    assert problems == []


def _help_options(command: list[str]) -> set[str] | None:
    """The options ``drready <command> --help`` lists (read from the click command in this
    process), or None if there is no such command."""
    try:
        found: Any = load_subcommand(command[0])
    except KeyError:
        return None
    for word in command[1:]:
        sub = getattr(found, "commands", {})
        if word not in sub:
            return None
        found = sub[word]
    return {opt for param in found.params for opt in (*param.opts, *param.secondary_opts)}


def test_the_example_systemd_units_use_only_options_the_commands_have() -> None:
    units = sorted((REPO / "docs" / "deploy" / "systemd").glob("*.service"))
    assert [u.name for u in units] == [
        "drready-cloud@.service",
        "drready-gateway.service",
        "drready-servicer.service",
        "drready-vtn.service",
    ]
    problems = []
    for unit in units:
        text = unit.read_text().replace("\\\n", " ")
        for key in (
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "StateDirectory=",
            "EnvironmentFile=",
        ):
            if key not in text:
                problems.append(f"{unit.name}: no {key}")
        for line in re.findall(r"^ExecStart(?:Pre)?=(.*)$", text, flags=re.M):
            words = line.split()
            command = []
            for word in words[1:]:
                if word.startswith("-"):
                    break
                command.append(word)
            known = _help_options(command)
            if known is None:
                problems.append(f"{unit.name}: `drready {' '.join(command)}` does not exist")
                continue
            problems += [
                f"{unit.name}: drready {' '.join(command)} has no {w}"
                for w in words
                if w.startswith("--") and w not in known
            ]
    assert problems == []


def test_default_start_is_tomorrow_six_in_the_morning() -> None:
    assert default_start(at(14, 0, 10)) == at(15, 6)
    assert default_start(at(14, 23, 59)) == at(15, 6)


def test_the_homes_are_half_dr_ready_half_the_installed_base(tmp_path: Path) -> None:
    settings = StackSettings()
    assert settings.homes == 10 and settings.battery
    run = new_run_dir("stack", explicit=tmp_path / "run")
    urls = _Urls("https://localhost:1", "https://localhost:2")
    specs = child_specs(settings, run, stack_credentials(settings, run, urls), urls, "{}")
    profiles = []
    for spec in specs:
        argv = list(spec.argv)
        if spec.name.startswith("home-"):
            profiles.append(argv[argv.index("--profile") + 1])
            assert argv[argv.index("--status-file") + 1] == str(
                run.path / "status" / f"{spec.name}.json"
            )
        if spec.name in ("cloud", *(f"home-{k}" for k in range(1, 11))):
            assert argv[argv.index("--tariff") + 1] == "flat"
    assert profiles == ["dr-ready"] * 5 + ["standard", "standard-single"] * 2 + ["standard"]
    assert [home_profile(k, 3) for k in range(3)] == ["dr-ready", "dr-ready", "standard"]
    groups = [[s.name for s in g] for g in start_groups(specs)]
    assert groups == [
        ["vtn"],
        [*(f"home-{k}" for k in range(1, 11)), "battery"],
        ["cloud", "gateway"],
        ["servicer"],
    ]


def test_the_dashboard_operator_of_a_run_can_log_in(tmp_path: Path) -> None:
    """The stack makes a dashboard operator (``servicer run --operators-file``) and tells the
    password in a 0600 file of its credentials folder, never on a command line."""
    run = new_run_dir("stack", explicit=tmp_path / "run")
    login = dashboard_operator(run)
    assert login == run.path / DASHBOARD_LOGIN_FILE and mode(login) == 0o600
    name, password = (line.split(": ", 1)[1] for line in login.read_text().splitlines())
    operators = OperatorFile(run.path / OPERATORS_FILE)
    assert name == DASHBOARD_OPERATOR and operators.names() == [name]
    assert operators.verify(name, password) and not operators.verify(name, password + "x")
    assert mode(run.path / OPERATORS_FILE) == 0o600
    settings = StackSettings(homes=1, units=10)
    urls = _Urls("https://localhost:1", "https://localhost:2")
    specs = child_specs(settings, run, stack_credentials(settings, run, urls), urls, "{}")
    argv = list(next(s for s in specs if s.name == "servicer").argv)
    assert argv[argv.index("--operators-file") + 1] == str(run.path / OPERATORS_FILE)
    assert password not in " ".join(argv)


def test_the_servicer_waits_wall_seconds_for_answers_at_any_scale() -> None:
    """A gateway reads its units over ECHONET Lite before it answers: wall time."""
    assert [answer_wait_s(x) for x in (1.0, 100.0, 720.0, 1000.0)] == [600.0] * 2 + [
        3600.0,
        5000.0,
    ]


def test_supervisor_starts_a_group_at_once(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs", os.environ)
    started = time.monotonic()
    ready_at = started + 1.0
    specs = [
        ChildSpec(f"n{k}", [PY, "-c", EXITS_ON_TERM], ready=lambda: time.monotonic() >= ready_at)
        for k in range(3)
    ]
    try:
        pids = sup.start_all(specs)
        took = time.monotonic() - started
        assert len(set(pids)) == 3 and sorted(sup.pids()) == ["n0", "n1", "n2"]
        assert 1.0 <= took < 2.5, took  # one wait for all three, not three in a row
        with pytest.raises(ValueError, match="started already"):
            sup.start_all([ChildSpec("n0", [PY, "-c", "pass"])])
    finally:
        exits = sup.stop(grace_s=2.0)
    assert all(e.exit_code == 0 for e in exits)
