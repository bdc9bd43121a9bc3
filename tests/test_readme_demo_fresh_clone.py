"""The README's first command, exactly as written, on a fresh clone (issue 11 item 1).

``make demo`` once exited 2 after 32 s on a fresh clone: the demo wrote the VTN's client
registry into ``demo-output/`` inside the work tree, and ``drready vtn serve`` rightly refused
credentials there. Nothing ran the README's command as a newcomer does, so nothing caught it.
This test does: it clones the repository's HEAD into a temporary directory and runs ``make
demo`` there — the Makefile creates its own ``.venv`` and pip-installs drready from the clone
(PyPI reachable; pip's cache is the user's, shared with ``make test``) — then checks the exit
status, the summary it printed and wrote, that nothing secret landed in the clone, and that the
run's keys, credentials and databases are in a private state directory outside it.

Only the user's state directory is redirected (``XDG_STATE_HOME`` into the test's temporary
directory) so that runs of the suite do not pile up under ``~/.local/state``; the interpreter is
the machine's ``python3`` (this test's virtualenv is taken off ``PATH``). Needs git and make: a
laptop without them skips, CI (``DRREADY_NO_SKIPS=1``) fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drready.sim.day_demo import SHAREABLE_OUTPUTS

REPO = Path(__file__).resolve().parents[1]
#: The whole test: clone, venv, pip install from the user's cache, one demo day (≈ 1–2 min).
TIMEOUT_S = 240.0
SECRET_SUFFIXES = (".pem", ".toml", ".db", ".db-wal", ".db-shm", ".key", ".log")


def _fresh_machine_env(state_home: Path) -> dict[str, str]:
    """The environment of a newcomer's shell: no virtualenv of ours, no drready settings."""
    ours = Path(sys.executable).parent
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != ours]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DRREADY_", "PYTHON", "PIP_REQUIRE")) and k != "VIRTUAL_ENV"
    }
    env["PATH"] = os.pathsep.join(path)
    env["XDG_STATE_HOME"] = str(state_home)
    return env


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
def test_make_demo_works_from_a_fresh_clone(tmp_path: Path) -> None:
    git, make = shutil.which("git"), shutil.which("make")
    if git is None or make is None:
        pytest.skip("needs git and make (apt-get install git make)")
    if not (REPO / ".git").exists():
        pytest.skip(f"{REPO} is not a git work tree")
    clone = tmp_path / "clone"
    state_home = tmp_path / "state"
    env = _fresh_machine_env(state_home)
    subprocess.run([git, "clone", "--quiet", str(REPO), str(clone)], check=True, env=env)

    started = time.monotonic()
    try:
        done = subprocess.run(
            ["make", "demo"],  # the README's command, exactly as written
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"make demo took longer than {TIMEOUT_S} s") from err
    wall_s = time.monotonic() - started
    print(f"make demo on a fresh clone: {wall_s:.0f} s (venv, pip install, one demo day)")
    assert done.returncode == 0, (done.returncode, done.stdout[-3000:], done.stderr[-3000:])

    # the summary it printed (stdout) and wrote
    for text in ("up-DR", "down-DR", "gateway", "cloud", "command following", "HTML report"):
        assert text in done.stdout, (text, done.stdout)
    out = clone / "demo-output"
    assert sorted(p.name for p in out.iterdir()) == sorted(SHAREABLE_OUTPUTS)
    summary = json.loads((out / "summary.json").read_text())
    rows = {(r["window"].split(" ")[0], r["route"]): r for r in summary["rows"]}
    for window in ("up-DR", "down-DR"):
        total = rows[(window, "all")]
        assert total["requested_kwh"] > 100, total
        assert total["delivered_kwh"] >= 0.9 * total["requested_kwh"], total
    assert all(r["dr_caused_shortages"] == 0 for r in summary["rows"])
    assert (out / "report.html").stat().st_size > 10_000

    # nothing secret in the clone: no key, registry, database or log outside .venv and .git
    leaked = [
        p.relative_to(clone)
        for p in clone.rglob("*")
        if p.is_file()
        and p.suffix in SECRET_SUFFIXES
        and not {".git", ".venv"} & set(p.relative_to(clone).parts)
    ]
    tracked = set(
        subprocess.run(
            [git, "ls-files"], cwd=clone, capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert [str(p) for p in leaked if str(p) not in tracked] == []

    # … they are in the run's private state directory, which the demo printed
    state = Path(summary["state_dir"])
    assert state.is_relative_to(state_home / "drready" / "runs"), state
    assert str(state) in done.stdout + done.stderr
    assert _mode(state) == 0o700
    for secret in ("vtn/clients.toml", "vtn/certs/server-key.pem", "vtn/vtn.db", "servicer.db"):
        assert _mode(state / secret) == 0o600, secret
    assert _mode(state / "vtn" / "vtn.log") == 0o600

    # and it stopped everything it started
    found = subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True)
    assert found.stdout.strip() == "", found.stdout
    for host in ("127.0.0.2", "127.0.0.20"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 3610))  # free again: the node that held it is closed
