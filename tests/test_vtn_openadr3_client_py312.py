"""The ElaadNL ``openadr3-client`` (needs Python ≥ 3.12) as BL and VEN against our VTN over
HTTPS, in its own virtual environment (C1, S1).

Where no Python 3.12+ interpreter exists the test skips saying so (CI, which has one, turns
skips into failures). The environment is cached in ``~/.cache/drready`` between runs.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from drready.openadr.vtn import VtnSettings, create_app
from drready.security.certs import write_bundle
from drready.security.tls import uvicorn_ssl_kwargs
from tests.https_helpers import free_port, serve
from tests.test_vtn_api import SECRETS, make_registry

SCRIPT = Path(__file__).parent / "interop" / "openadr3_client_check.py"


def python312() -> str | None:
    """A working Python >= 3.12 (pyenv shims of inactive versions do not count)."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")))
    candidates += sorted(glob.glob("/usr/bin/python3.1[2-9]"))
    candidates += [w for n in ("python3.12", "python3.13", "python3.14") if (w := shutil.which(n))]
    probe = "import sys; assert sys.version_info >= (3, 12)"
    for cand in candidates:
        if subprocess.run([cand, "-c", probe], capture_output=True).returncode == 0:
            return cand
    return None


def client_venv() -> Path:
    py = python312()
    if py is None:
        pytest.skip("openadr3-client needs Python >= 3.12 and none was found on this machine")
    cache = Path(os.environ.get("DRREADY_CACHE", Path.home() / ".cache" / "drready"))
    venv = cache / "openadr3-client-venv"
    bin_py = venv / "bin" / "python"
    check = [str(bin_py), "-c", "import openadr3_client"]
    if not bin_py.exists() or subprocess.run(check, capture_output=True).returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([py, "-m", "venv", str(venv)], check=True, timeout=120)
        r = subprocess.run(
            [str(bin_py), "-m", "pip", "install", "--quiet", "openadr3-client>=2.4"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 0, f"pip install openadr3-client failed: {r.stderr[-2000:]}"
    return bin_py


def test_openadr3_client_bl_and_ven_against_our_vtn(tmp_path: Path) -> None:
    py = client_venv()
    bundle = write_bundle(tmp_path / "certs")
    registry = make_registry()
    port = free_port()
    base = f"https://localhost:{port}"
    settings = VtnSettings(database_url=f"sqlite:///{tmp_path / 'vtn.db'}", base_url=base)
    app = create_app(settings, registry, registry.token_service(base))
    with serve(app, port=port, **uvicorn_ssl_kwargs(bundle.server_cert, bundle.server_key)):
        r = subprocess.run(
            [
                str(py),
                str(SCRIPT),
                "--vtn",
                base,
                "--ca",
                str(bundle.ca_cert),
                "--bl-id",
                "bl",
                "--bl-secret",
                SECRETS["bl"],
                "--ven-id",
                "ven-a",
                "--ven-secret",
                SECRETS["ven-a"],
            ],
            capture_output=True,
            text=True,
            timeout=180,  # the client's token-URL discovery uses requests' default trust store
            env={**os.environ, "REQUESTS_CA_BUNDLE": str(bundle.ca_cert)},
        )
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["ok"] and result["ven_saw_event"] and result["bl_saw_report"]
