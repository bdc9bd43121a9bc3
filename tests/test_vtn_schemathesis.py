"""Property-based API tests of the VTN with schemathesis, against its own OpenAPI document and
against the OpenADR 3.1.0 specification's: no 5xx, and every response matches its schema
(C1). Requests carry a BL token; a VEN and a program exist so that references can resolve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from drready.openadr.vtn import VtnSettings, create_app
from tests.test_vtn_api import fetch_token, make_registry

SPEC = Path(__file__).parents[1] / "src" / "drready" / "data" / "openadr3" / "openadr3.yaml"
CHECKS = [not_a_server_error, response_schema_conformance]
SETTINGS = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def _app(tmp: Path):  # type: ignore[no-untyped-def]
    registry = make_registry()
    settings_ = VtnSettings(database_url=f"sqlite:///{tmp / 'vtn.db'}", base_url="https://vtn.test")
    app = create_app(settings_, registry, registry.token_service("https://vtn.test"))
    with TestClient(app) as client:
        token = fetch_token(client, "bl")
        h = {"Authorization": f"Bearer {token}"}
        client.post("/programs", headers=h, json={"programName": "p"})
        client.post(
            "/vens",
            headers=h,
            json={"objectType": "BL_VEN_REQUEST", "clientID": "ven-a", "venName": "ven-a"},
        )
    return app, token


_TMP = Path(__import__("tempfile").mkdtemp(prefix="drready-st-"))
APP, TOKEN = _app(_TMP)
OWN = schemathesis.openapi.from_asgi("/openapi.json", APP)
THEIRS = schemathesis.openapi.from_path(SPEC)
THEIRS.app = APP


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    yield


@OWN.parametrize()
@SETTINGS
def test_own_openapi_document(case):  # type: ignore[no-untyped-def]
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)


@THEIRS.parametrize()
@SETTINGS
def test_the_specifications_openapi_document(case):  # type: ignore[no-untyped-def]
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)
