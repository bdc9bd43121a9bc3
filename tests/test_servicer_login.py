"""The dashboard and the operator pages behind a login (issue 12 item 6; S1, JC-STAR ★1
S1.1-01, -04): the app ``drready servicer run`` serves (:func:`create_app`) with an operators
file; unauthenticated pages redirect to the login, a wrong password is 401 and throttled,
state changes need the session's CSRF token, logout and a new password end a session, the
cookies carry the flags the design promises, the operators file is private and outside the
repository, ``drready servicer operator add`` writes a hash only, and a real browser (Debian's
Chromium through Playwright) logs in over HTTPS and sees the dashboard."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from drready.cli import app
from drready.domain import DEFAULT_TZ
from drready.domain.time import zone
from drready.security.certs import write_bundle
from drready.security.operators import OperatorFile
from drready.security.sessions import SessionSigner, load_or_create_session_key
from drready.security.tokens import ClientRegistry
from drready.security.verify_pool import BoundedVerifier
from drready.servicer.bl import BlClient
from drready.servicer.metrics import ServicerMetrics
from drready.servicer.service import Servicer
from drready.servicer.storage.store import ServicerStore
from drready.servicer.web.app import ServiceState, create_app
from drready.servicer.web.auth import AUDIENCE, SERVICER_POLICY
from drready.servicer.web.login import LOGIN_THROTTLE, PasswordFileAuthenticator
from drready.sim.processes import free_port

TZ = zone(DEFAULT_TZ)
NOW = datetime(2026, 5, 14, 8, 0, tzinfo=TZ)
PASSWORD = "correct horse battery staple"
CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    scale = 1.0

    def now(self) -> datetime:
        return NOW


@dataclass
class Site:
    http: TestClient
    operators: OperatorFile
    app: Any


def _app(tmp_path: Path, operators: OperatorFile | None, *, secure: bool = True) -> Any:
    store = ServicerStore.open(f"sqlite:///{tmp_path / 'servicer.db'}")
    clients = ClientRegistry(signing_key=secrets.token_urlsafe(48), policy=SERVICER_POLICY)
    clients.add_client("desk", secrets.token_urlsafe(24), role="trader")
    clock = FakeClock()
    bl = BlClient("https://vtn.invalid", "dr-servicer", "never-used-secret", verify=True)
    return create_app(
        store=store,
        servicer=Servicer(bl, store, clock=clock.now),
        clock=clock,
        registry=clients,
        tokens=clients.token_service("https://servicer.test", audience=AUDIENCE),
        base_url="https://servicer.test",
        metrics=ServicerMetrics(store, now=clock.now),
        state=ServiceState(),
        operators=PasswordFileAuthenticator(operators, BoundedVerifier(1, 4)),
        session_key=load_or_create_session_key(tmp_path / "state"),
        secure_cookies=secure,
        # the shipped limits, with no refill during a test however slow the machine
        login_throttle=LOGIN_THROTTLE.model_copy(update={"client_per_s": 1e-4}),
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    operators = OperatorFile(tmp_path / "operators.toml")
    operators.add("alice", PASSWORD)
    app = _app(tmp_path, operators)
    with TestClient(app, base_url="https://servicer.test") as http:
        yield Site(http, operators, app)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


def _login(http: TestClient, name: str = "alice", password: str = PASSWORD) -> Any:
    form = http.get("/login")
    assert form.status_code == 200
    return http.post(
        "/login",
        data={"csrf_token": _csrf(form.text), "name": name, "password": password},
        follow_redirects=False,
    )


def test_unauthenticated_operator_pages_redirect_to_login_and_machines_keep_bearer_tokens(
    site: Site,
) -> None:
    http = site.http
    page = http.get("/dashboard/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/dashboard/"
    for path in ("/dashboard/api/dashboard", "/dashboard/static/dashboard.js"):
        answer = http.get(path, headers={"Accept": "application/json"}, follow_redirects=False)
        assert answer.status_code == 401, path
        assert "login" in answer.json()["detail"]
    # a forged cookie is no session
    http.cookies.set("__Host-drready-session", "eyJzdWIiOiJhbGljZSJ9.AAAA")
    assert http.get("/dashboard/api/dashboard").status_code == 401
    http.cookies.clear()
    # the machine interfaces are not behind the login: bearer tokens, no cookies, no redirect
    orders = http.get("/api/v1/orders", follow_redirects=False)
    assert orders.status_code == 401 and "location" not in orders.headers
    assert http.get("/healthz").status_code == 200
    assert http.get("/metrics").status_code == 200
    assert http.post("/auth/token", data={"grant_type": "client_credentials"}).status_code == 401


def test_login_opens_the_dashboard_with_secure_cookies(site: Site) -> None:
    http = site.http
    answer = _login(http)
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("__Host-drready-session=")
    )
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= flags
    assert "SameSite=Strict" in cookie and "Max-Age=28800" in cookie and "Domain" not in cookie
    page = http.get("/dashboard/")
    assert page.status_code == 200
    assert 'data-testid="operator-name">alice<' in page.text
    assert "form-action 'self'" in page.headers["content-security-policy"]
    assert http.get("/dashboard/api/dashboard").status_code == 200
    # the next parameter never leads to another host
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        form = http.get("/login", params={"next": target})
        assert 'name="next" value="/dashboard/"' in form.text, target


def test_plain_http_cookies_are_not_secure_and_carry_no_host_prefix(tmp_path: Path) -> None:
    operators = OperatorFile(tmp_path / "operators.toml")
    operators.add("alice", PASSWORD)
    with TestClient(_app(tmp_path, operators, secure=False), base_url="http://s.test") as http:
        cookie = _login(http).headers["set-cookie"]
        assert cookie.startswith("drready-session=") and "Secure" not in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert http.get("/dashboard/").status_code == 200


def test_wrong_password_is_401_then_throttled_with_retry_after(site: Site) -> None:
    http = site.http
    wrong = _login(http, password="not the password at all")
    unknown = _login(http, name="mallory", password=PASSWORD)
    assert wrong.status_code == 401 and unknown.status_code == 401
    assert 'data-testid="login-error"' in wrong.text
    # the same answer whether the name exists or not
    assert wrong.text.count("Wrong operator name or password") == 1
    assert unknown.text.count("Wrong operator name or password") == 1
    assert "set-cookie" not in wrong.headers or "drready-session=;" not in wrong.headers.get(
        "set-cookie", ""
    )
    # five attempts per name at once (LOGIN_THROTTLE): the sixth on "alice" is refused before
    # any scrypt work, even with the right password
    statuses = [_login(http, password=f"wrong password number {k}").status_code for k in range(4)]
    assert statuses == [401] * 4
    refused = _login(http)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert http.get("/dashboard/api/dashboard").status_code == 401
    # another name from the same address is not held up by alice's
    assert _login(http, name="bob", password=PASSWORD).status_code == 401


def test_csrf_missing_or_wrong_is_403_and_logout_ends_the_session(site: Site) -> None:
    http = site.http
    # the login form itself: no token, or a token of another browser
    assert http.post("/login", data={"name": "alice", "password": PASSWORD}).status_code == 403
    other = TestClient(site.app, base_url="https://servicer.test")
    foreign = _csrf(other.get("/login").text)
    assert (
        http.post(
            "/login", data={"csrf_token": foreign, "name": "alice", "password": PASSWORD}
        ).status_code
        == 403
    )
    assert _login(http).status_code == 303
    cookie = http.cookies.get("__Host-drready-session")
    assert cookie
    token = _csrf(http.get("/dashboard/").text)
    assert http.post("/logout", follow_redirects=False).status_code == 403
    assert http.post("/logout", data={"csrf_token": "x" * 43}).status_code == 403
    assert http.post("/logout", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert http.post("/dashboard/", data={"anything": "1"}).status_code == 403
    # the right token from another origin
    assert (
        http.post(
            "/logout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
        ).status_code
        == 403
    )
    assert http.get("/dashboard/api/dashboard").status_code == 200  # still logged in
    out = http.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert http.get("/dashboard/api/dashboard").status_code == 401
    # the old cookie, replayed, is revoked
    http.cookies.set("__Host-drready-session", cookie)
    assert http.get("/dashboard/api/dashboard").status_code == 401


def test_a_new_password_or_removal_ends_the_operators_sessions(site: Site) -> None:
    http = site.http
    assert _login(http).status_code == 303
    assert http.get("/dashboard/api/dashboard").status_code == 200
    site.operators.add("alice", PASSWORD + " again")
    assert http.get("/dashboard/api/dashboard").status_code == 401
    assert _login(http, password=PASSWORD + " again").status_code == 303
    assert site.operators.remove("alice")
    assert http.get("/dashboard/api/dashboard").status_code == 401


def test_no_operators_file_keeps_the_dashboard_closed(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, None), base_url="https://servicer.test") as http:
        assert "No operators are configured" in http.get("/login").text
        assert _login(http).status_code == 401
        assert http.get("/dashboard/api/dashboard").status_code == 401


def test_operators_file_is_private_outside_the_repository_and_holds_hashes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ops" / "operators.toml"
    operators = OperatorFile(path)
    with pytest.raises(ValueError, match="password: must be 16"):
        operators.add("alice", "short")
    with pytest.raises(ValueError, match="name: must be"):
        operators.add("bad name", PASSWORD)
    operators.add("alice", PASSWORD)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert PASSWORD not in text and "scrypt$16384$8$1$" in text
    assert operators.verify("alice", PASSWORD) and not operators.verify("alice", PASSWORD + "x")
    assert not operators.verify("bob", PASSWORD)
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        OperatorFile(path)
    with pytest.raises(ValueError, match="inside the git work tree"):
        OperatorFile(REPO / "operators.toml")
    with pytest.raises(ValueError, match="inside the git work tree"):
        load_or_create_session_key(REPO / "state")
    key_dir = tmp_path / "state"
    key = load_or_create_session_key(key_dir)
    assert load_or_create_session_key(key_dir) == key  # kept: sessions survive a restart
    assert stat.S_IMODE((key_dir / "session.key").stat().st_mode) == 0o600


def test_sessions_expire_and_are_bound_to_their_key(tmp_path: Path) -> None:
    key = load_or_create_session_key(tmp_path)
    signer = SessionSigner(key, ttl_s=600)
    value, session = signer.issue("alice", "tag", now_s=1000.0)
    assert signer.verify(value, 1500.0) == session
    assert signer.verify(value, 1600.0) is None  # expired
    assert SessionSigner(secrets.token_bytes(32)).verify(value, 1500.0) is None  # other key
    body, mac = value.split(".")
    assert signer.verify(body[:-2] + "AA." + mac, 1500.0) is None  # tampered
    assert not signer.check_csrf(session, value)  # a session is not a CSRF token
    assert signer.check_csrf(session, signer.csrf_token(session))


def _cli(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> Any:
    # in process (typer's runner: standard input is no terminal, so the password is read
    # from it, as from a pipe)
    return CliRunner().invoke(app, ["servicer", "operator", *args], input=stdin, env=env)


def test_operator_add_reads_the_password_from_stdin_and_writes_a_hash(tmp_path: Path) -> None:
    path = tmp_path / "operators.toml"
    done = _cli("add", "alice", "--operators-file", str(path), stdin=PASSWORD + "\n")
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PASSWORD not in path.read_text()
    assert OperatorFile(path).verify("alice", PASSWORD)
    listed = _cli("list", env={"DRREADY_SERVICER_OPERATORS_FILE": str(path)})
    assert listed.exit_code == 0 and listed.stdout.split() == ["alice"]
    short = _cli("add", "bob", "--operators-file", str(path), stdin="short\n")
    assert short.exit_code == 2 and "password: must be 16" in short.output
    inside = _cli("add", "bob", "--operators-file", str(REPO / "ops.toml"), stdin=PASSWORD)
    assert inside.exit_code == 2 and "inside the git work tree" in inside.output
    assert not (REPO / "ops.toml").exists()


# ---------------------------------------------------------------------------------------------
# In headless Chromium, over HTTPS
# ---------------------------------------------------------------------------------------------


def test_a_browser_logs_in_sees_the_dashboard_and_logs_out(tmp_path: Path) -> None:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    operators = OperatorFile(tmp_path / "operators.toml")
    operators.add("alice", PASSWORD)
    bundle = write_bundle(tmp_path / "certs")
    port = free_port()
    config = uvicorn.Config(
        _app(tmp_path, operators),
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(bundle.server_cert),
        ssl_keyfile=str(bundle.server_key),
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        url = f"https://localhost:{port}"
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            try:
                context = browser.new_context(ignore_https_errors=True)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{url}/dashboard/")
                assert page.url.startswith(f"{url}/login")  # redirected to the login
                page.get_by_label("Operator").fill("alice")
                page.get_by_label("Password").fill("not the password at all")
                page.get_by_role("button", name="Log in").click()
                assert (
                    "Wrong operator name or password"
                    in page.get_by_test_id("login-error").inner_text()
                )
                page.get_by_label("Operator").fill("alice")
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url(f"{url}/dashboard/")
                assert page.get_by_test_id("operator-name").inner_text() == "alice"
                page.wait_for_selector("#title")
                assert page.locator("#title").inner_text() == "drready DR servicer"
                cookies = {c["name"]: c for c in context.cookies()}
                session = cookies["__Host-drready-session"]
                assert session["httpOnly"] and session["secure"]
                assert session["sameSite"] == "Strict"
                assert page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it
                page.get_by_test_id("logout").click()
                page.wait_for_url(f"{url}/login")
                page.goto(f"{url}/dashboard/")
                assert page.url.startswith(f"{url}/login")
                assert not errors, errors
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_an_operators_file_opened_to_others_while_running_lets_no_one_in(site: Site) -> None:
    http = site.http
    assert _login(http).status_code == 303
    os.chmod(site.operators.path, 0o644)
    answer = http.get("/dashboard/api/dashboard")
    assert answer.status_code == 401  # fail closed, not a 500
    assert _login(http).status_code == 401
    os.chmod(site.operators.path, 0o600)
    assert _login(http).status_code == 303


def test_servicer_run_refuses_an_operators_file_inside_the_repo_or_open_to_others(
    tmp_path: Path,
) -> None:
    from tests.servicer_run_helpers import api_registry

    clients, _, key = api_registry(tmp_path)
    env = {"DRREADY_CLIENT_SECRET": "s" * 24, "DRREADY_TOKEN_KEY": key}
    base = ["servicer", "run", "--vtn", "http://127.0.0.1:1", "--insecure-http"]
    base += ["--clients-file", str(clients), "--database", f"sqlite:///{tmp_path / 's.db'}"]
    inside = CliRunner().invoke(app, [*base, "--operators-file", str(REPO / "ops.toml")], env=env)
    assert inside.exit_code == 2 and "--operators-file" in inside.output
    assert "inside the git work tree" in inside.output
    operators = OperatorFile(tmp_path / "operators.toml")
    operators.add("alice", PASSWORD)
    os.chmod(operators.path, 0o640)
    opened = CliRunner().invoke(app, [*base, "--operators-file", str(operators.path)], env=env)
    assert opened.exit_code == 2 and "chmod 600" in opened.output
    os.chmod(operators.path, 0o600)
    in_repo_state = [*base, "--operators-file", str(operators.path), "--state-dir", str(REPO)]
    state = CliRunner().invoke(app, in_repo_state, env=env)
    assert state.exit_code == 2 and "--state-dir" in state.output
