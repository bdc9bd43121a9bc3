"""S1 security building blocks: local CA, TLS (incl. mutual TLS) against a live uvicorn server,
JWT access tokens, the hashed client registry, settings and the body-size limit."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import ssl
import stat
import threading
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from fastapi import FastAPI, Request

from drready.security import tokens as tokens_module
from drready.security.certs import (
    CertBundle,
    CertsArgumentError,
    cert_to_pem,
    certs_command,
    key_to_pem,
    load_certificate,
    make_ca,
    make_certificate,
    write_bundle,
)
from drready.security.limits import BodySizeLimit
from drready.security.settings import SecuritySettings
from drready.security.tls import (
    PlainHttpWarning,
    client_ssl_context,
    insecure_http_warning,
    server_ssl_context,
    uvicorn_ssl_kwargs,
    warn_insecure_http,
)
from drready.security.tokens import (
    ALL_SCOPES,
    BL_SCOPES,
    READ_BL,
    VEN_SCOPES,
    ClientRegistry,
    TokenExpiredError,
    TokenInvalidError,
    TokenService,
    example_clients_file,
    hash_secret,
    load_registry,
    verify_secret,
)
from tests.https_helpers import serve

SPEC = Path("/work/shared/specs/openadr3/3.1.0/openadr3.yaml")
HS_KEY = "k" * 40  # a throwaway test key; real keys come from DRREADY_TOKEN_KEY
SECRET = "s3cr3t-for-tests-only-0123456789"


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    return write_bundle(tmp_path_factory.mktemp("pki"), client_names=("ven-1", "bl-1"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    """An unrelated PKI: its CA must not be trusted by, nor vouch for, the first one."""
    return write_bundle(tmp_path_factory.mktemp("other"), client_names=("mallory",))


def _ping_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "ok"}

    return app


def tls_exchange(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str
) -> bytes:
    """One raw TLS connection over loopback; returns what the server sent (b"ok")."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    port = listener.getsockname()[1]

    def accept() -> None:
        with contextlib.suppress(OSError):  # ssl.SSLError is an OSError
            conn, _ = listener.accept()
            conn.settimeout(5)
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")
                tls.recv(1)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            return tls.recv(2)
    finally:
        thread.join(5)
        listener.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- certs ----------------------------------------------------------------------------------


def test_bundle_certificates_chain_and_extensions(bundle: CertBundle) -> None:
    ca = load_certificate(bundle.ca_cert)
    server = load_certificate(bundle.server_cert)
    client = load_certificate(bundle.client("ven-1").cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for leaf in (server, client):
        leaf.verify_directly_issued_by(ca)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
        assert leaf.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    server_eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    client_eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(server_eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert list(client_eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert client.subject.rfc4514_string().startswith("CN=ven-1")


def test_bundle_file_modes(bundle: CertBundle) -> None:
    assert len(bundle.private_keys) == 4
    for key in bundle.private_keys:
        assert _mode(key) == 0o600, key
        assert b"PRIVATE KEY" in key.read_bytes()
    for cert in (bundle.ca_cert, bundle.server_cert, *(c.cert for c in bundle.clients)):
        assert _mode(cert) == 0o644, cert
    assert sorted(p.name for p in bundle.out_dir.iterdir()) == sorted(
        [
            "ca.pem",
            "ca-key.pem",
            "server.pem",
            "server-key.pem",
            "client-ven-1.pem",
            "client-ven-1-key.pem",
            "client-bl-1.pem",
            "client-bl-1-key.pem",
        ]
    )


def test_bundle_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    first = certs_command(tmp_path / "pki", overwrite=False)
    before = {p: p.read_bytes() for p in first.out_dir.iterdir()}
    with pytest.raises(CertsArgumentError) as info:
        certs_command(tmp_path / "pki", overwrite=False)
    assert info.value.argument == "out_dir"
    assert "exists already" in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)
    assert {p: p.read_bytes() for p in first.out_dir.iterdir()} == before

    first.server_key.chmod(0o644)  # a loosened key must come back as 0600
    second = certs_command(tmp_path / "pki", overwrite=True)
    assert second.server_key.read_bytes() != before[first.server_key]
    assert all(_mode(k) == 0o600 for k in second.private_keys)


def test_certs_command_validates_arguments(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"^out_dir: .*git work tree"):
        certs_command(tmp_path / "repo" / "certs", overwrite=False)
    assert not (tmp_path / "repo" / "certs").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"^out_dir: .*not a directory"):
        certs_command(tmp_path / "file", overwrite=False)
    with pytest.raises(ValueError, match=r"^client_names: '../evil'"):
        certs_command(tmp_path / "pki", overwrite=False, client_names=("../evil",))
    assert not (tmp_path / "pki").exists()


def test_make_certificate_rejects_bad_inputs() -> None:
    ca_key, ca_cert = make_ca()
    with pytest.raises(ValueError, match=r"days"):
        make_certificate(ca_key, ca_cert, "x", days=826)
    with pytest.raises(ValueError, match=r"SAN"):
        make_certificate(ca_key, ca_cert, "x", dns_names=(), ip_addresses=())
    with pytest.raises(ValueError, match=r"ip_addresses"):
        make_certificate(ca_key, ca_cert, "x", ip_addresses=("not-an-ip",))
    with pytest.raises(ValueError, match=r"common_name"):
        make_ca("")


# --- TLS ------------------------------------------------------------------------------------


def test_context_policy(bundle: CertBundle) -> None:
    server = server_ssl_context(bundle.server_cert, bundle.server_key)
    client = client_ssl_context(bundle.ca_cert)
    for ctx in (server, client):
        assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
        tls12 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
        assert tls12 and all(c["kea"] == "kx-ecdhe" and c["aead"] for c in tls12)
    assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED
    assert server.verify_mode == ssl.CERT_NONE
    mtls = server_ssl_context(
        bundle.server_cert, bundle.server_key, client_ca=bundle.ca_cert, require_client_cert=True
    )
    assert mtls.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(ValueError, match=r"^client_ca"):
        server_ssl_context(bundle.server_cert, bundle.server_key, require_client_cert=True)
    with pytest.raises(ValueError, match=r"^client_ca"):
        uvicorn_ssl_kwargs(bundle.server_cert, bundle.server_key, require_client_cert=True)


def test_https_server_reachable_with_ca(bundle: CertBundle) -> None:
    kwargs = uvicorn_ssl_kwargs(bundle.server_cert, bundle.server_key)
    assert kwargs["ssl_cert_reqs"] == ssl.CERT_NONE and kwargs["ssl_ca_certs"] is None
    with serve(_ping_app(), **kwargs) as port:
        with httpx.Client(verify=client_ssl_context(bundle.ca_cert)) as client:
            for host in ("127.0.0.1", "localhost"):
                response = client.get(f"https://{host}:{port}/ping")
                assert response.status_code == 200
                assert response.json() == {"pong": "ok"}
        with httpx.Client() as client, pytest.raises(httpx.RemoteProtocolError):
            client.get(f"http://127.0.0.1:{port}/ping")  # no plain HTTP on the TLS port


def test_https_server_refused_without_its_ca(bundle: CertBundle, other_ca: CertBundle) -> None:
    with serve(_ping_app(), **uvicorn_ssl_kwargs(bundle.server_cert, bundle.server_key)) as port:
        url = f"https://127.0.0.1:{port}/ping"
        with httpx.Client() as client, pytest.raises(httpx.ConnectError) as info:
            client.get(url)  # system trust store only
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
        with (
            httpx.Client(verify=client_ssl_context(other_ca.ca_cert)) as client,
            pytest.raises(httpx.ConnectError) as info,
        ):
            client.get(url)
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def test_https_server_requires_client_certificate(bundle: CertBundle, other_ca: CertBundle) -> None:
    kwargs = uvicorn_ssl_kwargs(
        bundle.server_cert, bundle.server_key, client_ca=bundle.ca_cert, require_client_cert=True
    )
    assert kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    ven = bundle.client("ven-1")
    mallory = other_ca.client("mallory")
    with serve(_ping_app(), **kwargs) as port:
        url = f"https://127.0.0.1:{port}/ping"
        good = client_ssl_context(bundle.ca_cert, cert=ven.cert, key=ven.key)
        with httpx.Client(verify=good) as client:
            assert client.get(url).status_code == 200
        no_cert = client_ssl_context(bundle.ca_cert)
        with httpx.Client(verify=no_cert) as client, pytest.raises(httpx.TransportError):
            client.get(url)
        foreign = client_ssl_context(bundle.ca_cert, cert=mallory.cert, key=mallory.key)
        with httpx.Client(verify=foreign) as client, pytest.raises(httpx.TransportError):
            client.get(url)


def test_server_context_handshakes(bundle: CertBundle) -> None:
    ven = bundle.client("ven-1")
    plain = server_ssl_context(bundle.server_cert, bundle.server_key)
    assert tls_exchange(plain, client_ssl_context(bundle.ca_cert), "localhost") == b"ok"
    mtls = server_ssl_context(
        bundle.server_cert, bundle.server_key, client_ca=bundle.ca_cert, require_client_cert=True
    )
    with_cert = client_ssl_context(bundle.ca_cert, cert=ven.cert, key=ven.key)
    assert tls_exchange(mtls, with_cert, "localhost") == b"ok"
    with pytest.raises(ssl.SSLError, match=r"(?i)certificate"):
        tls_exchange(mtls, client_ssl_context(bundle.ca_cert), "localhost")


def test_client_verifies_hostname(tmp_path: Path, bundle: CertBundle) -> None:
    ca_key, ca_cert = make_ca()
    key, cert = make_certificate(
        ca_key, ca_cert, "other.example", dns_names=("other.example",), ip_addresses=()
    )
    for name, data in {"ca.pem": cert_to_pem(ca_cert), "s.pem": cert_to_pem(cert)}.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "s-key.pem").write_bytes(key_to_pem(key))
    server = server_ssl_context(tmp_path / "s.pem", tmp_path / "s-key.pem")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"(?i)hostname mismatch"):
        tls_exchange(server, client_ssl_context(tmp_path / "ca.pem"), "localhost")
    # a client certificate (clientAuth only) is no server certificate
    ven = bundle.client("ven-1")
    impostor = server_ssl_context(ven.cert, ven.key)
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_exchange(impostor, client_ssl_context(bundle.ca_cert), "localhost")


def test_insecure_http_warning() -> None:
    message = insecure_http_warning()
    assert message == (
        "plain HTTP: credentials and DR data travel unencrypted; for local experiments only"
    )
    with pytest.warns(PlainHttpWarning, match=r"unencrypted"):
        warn_insecure_http()


# --- tokens ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _service(clock: FakeClock | None = None, **kwargs: Any) -> TokenService:
    return TokenService("https://vtn.test", HS_KEY, clock=clock or FakeClock(), **kwargs)


def test_scopes_match_the_openadr_spec() -> None:
    if not SPEC.exists():
        pytest.skip("OpenADR 3.1.0 spec not available")
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    declared = spec["components"]["securitySchemes"]["oAuth2ClientCredentials"]["flows"][
        "clientCredentials"
    ]["scopes"]
    used = {
        scope
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict)
        for requirement in op.get("security", [])
        for scope in requirement.get("oAuth2ClientCredentials", [])
    }
    assert set(declared) == ALL_SCOPES - {READ_BL}
    assert used <= ALL_SCOPES
    assert BL_SCOPES | VEN_SCOPES == ALL_SCOPES
    assert {"write_programs", "write_events", "read_all"} <= BL_SCOPES - VEN_SCOPES
    assert {"write_reports", "read_targets", "read_ven_objects"} <= VEN_SCOPES - BL_SCOPES


def test_token_round_trip() -> None:
    service = _service()
    token, expires_in = service.issue("ven-client", VEN_SCOPES, role="ven", ven_id="ven-7")
    assert expires_in == 300
    claims = service.verify(token)
    assert claims.client_id == "ven-client"
    assert claims.scopes == VEN_SCOPES
    assert claims.role == "ven" and claims.ven_id == "ven-7"
    assert claims.expires_at == 1_700_000_000 + 300
    assert claims.has_scope("write_reports") and not claims.has_scope("write_events")
    bl = service.verify(service.issue("bl", BL_SCOPES, role="bl")[0])
    assert bl.role == "bl" and bl.ven_id is None


def test_token_expiry_uses_the_clock() -> None:
    clock = FakeClock()
    service = _service(clock, ttl_s=60)
    token, _ = service.issue("c", ["read_targets"], role="ven")
    clock.now += 59
    assert service.verify(token).client_id == "c"
    clock.now += 1
    with pytest.raises(TokenExpiredError):
        service.verify(token)
    clock.now -= 3600  # issued "in the future" for a clock that went back
    with pytest.raises(TokenInvalidError, match=r"future"):
        service.verify(token)


def test_tampered_token_is_invalid() -> None:
    service = _service()
    token, _ = service.issue("c", ["read_targets"], role="ven")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"], claims["scope"] = "bl", "read_all write_events"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenInvalidError, match=r"(?i)signature"):
        service.verify(f"{header}.{forged}.{signature}")
    for garbage in ("", "abc", "a.b.c", token + "x"):
        with pytest.raises(TokenInvalidError):
            service.verify(garbage)


def test_token_signed_with_another_key_is_invalid() -> None:
    token, _ = TokenService("https://vtn.test", "x" * 40, clock=FakeClock()).issue(
        "c", ["read_targets"], role="ven"
    )
    with pytest.raises(TokenInvalidError):
        _service().verify(token)


def test_alg_none_is_refused() -> None:
    claims = {
        "iss": "https://vtn.test",
        "aud": "drready-vtn",
        "sub": "c",
        "client_id": "c",
        "scope": "read_all",
        "role": "bl",
        "iat": 1_700_000_000,
        "exp": 1_700_000_100,
    }
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(TokenInvalidError, match=r"none"):
        _service().verify(unsigned)
    with pytest.raises(TokenInvalidError):
        _service().verify(unsigned + "c2lnbmF0dXJl")


def test_wrong_audience_or_issuer_is_invalid() -> None:
    token, _ = _service(audience="someone-else").issue("c", ["read_targets"], role="ven")
    with pytest.raises(TokenInvalidError, match=r"(?i)audience"):
        _service().verify(token)
    other = TokenService("https://evil.test", HS_KEY, clock=FakeClock())
    with pytest.raises(TokenInvalidError, match=r"(?i)issuer"):
        _service().verify(other.issue("c", ["read_targets"], role="ven")[0])


def test_missing_or_malformed_claims_are_invalid() -> None:
    base = {
        "iss": "https://vtn.test",
        "aud": "drready-vtn",
        "sub": "c",
        "client_id": "c",
        "scope": "read_targets",
        "role": "ven",
        "iat": 1_700_000_000,
        "exp": 1_700_000_100,
    }
    assert _service().verify(jwt.encode(base, HS_KEY, algorithm="HS256")).client_id == "c"
    broken: list[dict[str, Any]] = [
        {k: v for k, v in base.items() if k != "role"},
        {k: v for k, v in base.items() if k != "exp"},
        {k: v for k, v in base.items() if k != "client_id"},
        base | {"role": "admin"},
        base | {"scope": "read_all everything"},
        base | {"client_id": "someone-else"},
        base | {"exp": "tomorrow"},
        base | {"exp": 1_700_000_000 + 86_400},  # longer than any allowed TTL
    ]
    for payload in broken:
        with pytest.raises(TokenInvalidError):
            _service().verify(jwt.encode(payload, HS_KEY, algorithm="HS256"))


def test_es256_tokens_and_key_confusion() -> None:
    key, _ = make_ca()
    pem = key_to_pem(key)
    service = TokenService("https://vtn.test", pem, algorithm="ES256", clock=FakeClock())
    token, _ = service.issue("c", ["read_all"], role="bl")
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert service.verify(token).role == "bl"
    # an HS256 token keyed with the public key must not pass as ES256
    hs = _service().issue("c", ["read_all"], role="bl")[0]
    with pytest.raises(TokenInvalidError, match=r"HS256"):
        service.verify(hs)
    with pytest.raises(ValueError, match=r"^signing_key"):
        TokenService("https://vtn.test", pem, algorithm="HS256")


def test_token_service_arguments() -> None:
    for ttl in (29, 3601):
        with pytest.raises(ValueError, match=r"^ttl_s"):
            _service(ttl_s=ttl)
    assert _service(ttl_s=30).ttl_s == 30 and _service(ttl_s=3600).ttl_s == 3600
    with pytest.raises(ValueError, match=r"^signing_key"):
        TokenService("https://vtn.test", "short")
    with pytest.raises(ValueError, match=r"^algorithm"):
        TokenService("https://vtn.test", HS_KEY, algorithm="none")
    with pytest.raises(ValueError, match=r"^scopes"):
        _service().issue("c", ["root"], role="bl")
    with pytest.raises(ValueError, match=r"^role"):
        _service().issue("c", ["read_all"], role="admin")


# --- client registry ------------------------------------------------------------------------


def test_registry_authenticates(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ClientRegistry(signing_key=HS_KEY)
    record = registry.add_client("maker-1", SECRET, role="ven", ven_id="ven-1")
    assert record.scopes == VEN_SCOPES and SECRET not in record.secret_hash
    assert registry.authenticate("maker-1", SECRET) == record
    with pytest.raises(TokenInvalidError) as wrong:
        registry.authenticate("maker-1", SECRET + "x")
    calls: list[str] = []
    real = tokens_module.verify_secret

    def counting(secret: str, secret_hash: str) -> bool:
        calls.append(secret)
        return real(secret, secret_hash)

    monkeypatch.setattr(tokens_module, "verify_secret", counting)
    with pytest.raises(TokenInvalidError) as unknown:
        registry.authenticate("nobody", SECRET)
    assert str(wrong.value) == str(unknown.value)
    assert calls == [SECRET]  # the unknown client still costs one scrypt run
    with pytest.raises(ValueError, match=r"twice"):
        registry.add_client("maker-1", SECRET, role="ven")


def test_secret_hashes_are_salted() -> None:
    a, b = hash_secret(SECRET), hash_secret(SECRET)
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert verify_secret(SECRET, a) and verify_secret(SECRET, b)
    assert not verify_secret(SECRET[:-1], a)
    with pytest.raises(ValueError, match=r"^client_secret"):
        hash_secret("too-short")


def test_registry_file_round_trip_never_stores_the_secret(tmp_path: Path) -> None:
    registry = ClientRegistry()
    registry.add_client("dr-servicer", SECRET, role="bl")
    registry.add_client("maker-1", SECRET[::-1], role="ven", ven_id="ven-1")
    env = {"DRREADY_TOKEN_KEY": HS_KEY}
    for name in ("clients.toml", "clients.json"):
        path = tmp_path / name
        registry.save(path)
        text = path.read_text()
        assert SECRET not in text and SECRET[::-1] not in text
        assert text.count("scrypt$") == 2
        assert _mode(path) == 0o600
        with pytest.raises(FileExistsError):
            registry.save(path)
        loaded = load_registry(path, env=env)
        assert loaded.authenticate("dr-servicer", SECRET).role == "bl"
        assert loaded.authenticate("maker-1", SECRET[::-1]).ven_id == "ven-1"
        with pytest.raises(TokenInvalidError):
            loaded.authenticate("maker-1", SECRET)
    via_env = load_registry(env=env | {"DRREADY_CLIENTS_FILE": str(tmp_path / "clients.toml")})
    service = via_env.token_service("https://vtn.test")
    claims = service.verify(service.issue("dr-servicer", BL_SCOPES, role="bl")[0])
    assert claims.scopes == BL_SCOPES
    inline = load_registry(env=env | {"DRREADY_CLIENTS_JSON": registry.dumps("json")})
    assert len(inline) == 2 and "maker-1" in inline


def test_missing_token_key_explains_how_to_set_it(tmp_path: Path) -> None:
    registry = ClientRegistry()
    registry.add_client("c", SECRET, role="ven")
    registry.save(tmp_path / "clients.toml")
    env = {"DRREADY_CLIENTS_FILE": str(tmp_path / "clients.toml")}
    for bad in (env, env | {"DRREADY_TOKEN_KEY": ""}):
        with pytest.raises(ValueError, match=r"^DRREADY_TOKEN_KEY: .*export DRREADY_TOKEN_KEY="):
            load_registry(env=bad)
    with pytest.raises(ValueError, match=r"DRREADY_TOKEN_KEY"):
        registry.token_service("https://vtn.test")
    with pytest.raises(ValueError, match=r"^signing_key"):
        load_registry(env=env | {"DRREADY_TOKEN_KEY": "short"})


def test_token_key_file_must_be_private(tmp_path: Path) -> None:
    registry = ClientRegistry()
    registry.add_client("c", SECRET, role="ven")
    registry.save(tmp_path / "clients.json")
    key_file = tmp_path / "token.key"
    key_file.write_text(HS_KEY + "\n")
    key_file.chmod(0o644)
    env = {"DRREADY_CLIENTS_FILE": str(tmp_path / "clients.json")}
    with pytest.raises(ValueError, match=r"^DRREADY_TOKEN_KEY_FILE: .*chmod 600"):
        load_registry(env=env | {"DRREADY_TOKEN_KEY_FILE": str(key_file)})
    key_file.chmod(0o600)
    loaded = load_registry(env=env | {"DRREADY_TOKEN_KEY_FILE": str(key_file)})
    assert loaded.signing_key == HS_KEY.encode()


def test_registry_file_validation(tmp_path: Path) -> None:
    env = {"DRREADY_TOKEN_KEY": HS_KEY}
    example = example_clients_file()
    assert "PLACEHOLDER" in example and len(tomllib.loads(example)["clients"]) == 2
    (tmp_path / "example.toml").write_text(example)
    with pytest.raises(ValueError, match=r"clients\['dr-servicer'\]\.secret_hash"):
        load_registry(tmp_path / "example.toml", env=env)
    clear = {"clients": [{"client_id": "c", "client_secret": SECRET, "role": "ven"}]}
    (tmp_path / "clear.json").write_text(json.dumps(clear))
    with pytest.raises(ValueError, match=r"never the secret"):
        load_registry(tmp_path / "clear.json", env=env)
    bad_scope = {"clients": [{"client_id": "c", "secret_hash": hash_secret(SECRET), "role": "ven"}]}
    bad_scope["clients"][0]["scopes"] = ["read_everything"]
    (tmp_path / "scope.json").write_text(json.dumps(bad_scope))
    with pytest.raises(ValueError, match=r"scopes: unknown scope"):
        load_registry(tmp_path / "scope.json", env=env)
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "clients.toml").write_text(example)
    with pytest.raises(ValueError, match=r"^DRREADY_CLIENTS_FILE: .*git work tree"):
        load_registry(tmp_path / "repo" / "clients.toml", env=env)
    with pytest.raises(ValueError, match=r"^DRREADY_CLIENTS_FILE: no OAuth2 clients"):
        load_registry(env=env)


# --- settings -------------------------------------------------------------------------------


def test_settings_from_env_and_file(tmp_path: Path) -> None:
    assert SecuritySettings.load(env={}).max_body_bytes == 1_048_576
    file = tmp_path / "security.toml"
    file.write_text('cert_file = "/etc/drready/server.pem"\nkey_file = "/etc/k.pem"\n')
    env = {"DRREADY_SECURITY_FILE": str(file), "DRREADY_TOKEN_TTL_S": "600"}
    settings = SecuritySettings.load(env=env | {"DRREADY_MAX_BODY_BYTES": "2048"})
    assert settings.cert_file == Path("/etc/drready/server.pem")
    assert settings.max_body_bytes == 2048 and settings.token_ttl_s == 600
    assert settings.uvicorn_kwargs()["ssl_certfile"] == "/etc/drready/server.pem"
    for value in ("1023", str(16 * 1024 * 1024 + 1), "lots"):
        with pytest.raises(ValueError, match=r"^max_body_bytes \(DRREADY_MAX_BODY_BYTES\)"):
            SecuritySettings.load(env={"DRREADY_MAX_BODY_BYTES": value})
    with pytest.raises(ValueError, match=r"^token_ttl_s \(DRREADY_TOKEN_TTL_S\)"):
        SecuritySettings.load(env={"DRREADY_TOKEN_TTL_S": "3601"})
    with pytest.raises(ValueError, match=r"cert_file and key_file"):
        SecuritySettings.load(env={"DRREADY_CERT_FILE": "/x.pem"})
    with pytest.raises(ValueError, match=r"require_client_cert needs ca_file"):
        SecuritySettings(require_client_cert=True)
    file.write_text("max_body = 5\n")
    with pytest.raises(ValueError, match=rf"^max_body \({file}\)"):
        SecuritySettings.load(file)


def test_settings_insecure_http() -> None:
    with pytest.raises(ValueError, match=r"^cert_file: .*--insecure-http"):
        SecuritySettings().require_tls_server()
    insecure = SecuritySettings.load(env={"DRREADY_INSECURE_HTTP": "true"})
    assert insecure.insecure_http and insecure.uvicorn_kwargs() == {}
    with pytest.raises(ValueError, match=r"insecure_http cannot be combined"):
        SecuritySettings(insecure_http=True, cert_file=Path("/c"), key_file=Path("/k"))


# --- body size limit ------------------------------------------------------------------------

LIMIT = 1024


def _echo_app() -> BodySizeLimit:
    app = FastAPI()
    calls: list[int] = []

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        body = await request.body()
        calls.append(len(body))
        return {"length": len(body)}

    limited = BodySizeLimit(app, max_body_bytes=LIMIT)
    limited.calls = calls  # type: ignore[attr-defined]
    return limited


async def _chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b"x" * min(size, total - sent)
        sent += len(chunk)
        yield chunk


def _post(app: Any, content: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/echo", content=content)

    return asyncio.run(go())


def _assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Payload Too Large",
        "status": 413,
        "detail": f"request body exceeds {LIMIT} bytes",
    }


def test_body_limit_by_content_length() -> None:
    app = _echo_app()
    _assert_413(_post(app, b"x" * (LIMIT + 1)))
    assert app.calls == []  # type: ignore[attr-defined]  # rejected before the app ran
    response = _post(app, b"x" * LIMIT)
    assert response.status_code == 200 and response.json() == {"length": LIMIT}


def test_body_limit_on_chunked_body() -> None:
    app = _echo_app()
    response = _post(app, _chunks(LIMIT + 1))
    _assert_413(response)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    ok = _post(app, _chunks(LIMIT))
    assert ok.status_code == 200 and ok.json() == {"length": LIMIT}


def test_body_limit_reads_at_most_limit_plus_one_byte() -> None:
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def endless_receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def greedy_app(scope: Any, receive: Any, send: Any) -> None:
        while True:  # reads until something stops it
            await receive()

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    asyncio.run(BodySizeLimit(greedy_app, max_body_bytes=LIMIT)(scope, endless_receive, send))
    assert pulled == LIMIT + 1
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["status"] == 413


def test_body_limit_rejects_bad_content_length() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("body must not be read")

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("app must not run")

    scope = {"type": "http", "headers": [(b"content-length", b"12, 5000")]}
    asyncio.run(BodySizeLimit(app, max_body_bytes=LIMIT)(scope, receive, send))
    assert sent[0]["status"] == 400
    with pytest.raises(ValueError, match=r"^max_body_bytes"):
        BodySizeLimit(app, max_body_bytes=-1)


def test_body_limit_as_fastapi_middleware_over_https(bundle: CertBundle) -> None:
    app = _ping_app()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    app.add_middleware(BodySizeLimit, max_body_bytes=LIMIT)
    kwargs = uvicorn_ssl_kwargs(bundle.server_cert, bundle.server_key)
    with (
        serve(app, **kwargs) as port,
        httpx.Client(verify=client_ssl_context(bundle.ca_cert)) as client,
    ):
        url = f"https://localhost:{port}/echo"
        assert client.post(url, content=b"x" * LIMIT).json() == {"length": LIMIT}
        response = client.post(url, content=b"x" * (LIMIT + 1))
        assert response.status_code == 413
        assert response.json()["detail"] == f"request body exceeds {LIMIT} bytes"


def test_no_secret_material_in_security_sources() -> None:
    source = Path(tokens_module.__file__).parent
    for path in source.glob("*.py"):
        text = path.read_text()
        assert "BEGIN EC PRIVATE KEY" not in text and "BEGIN PRIVATE KEY" not in text, path
        if path.name != "listen.py":  # the module that refuses it names it
            assert "0.0.0.0" not in text, path
