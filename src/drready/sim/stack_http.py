"""The HTTPS clients ``drready stack up`` uses itself: the order desk on the servicer's
north-bound API and a read-only observer on the VTN (S1: OAuth2 client credentials, TLS to the
run's own CA; issue 11 items 5 and 7).

:class:`TokenClient` is a small synchronous OAuth2 client-credentials client: it trades its id
and secret for a bearer token at ``/auth/token`` (RFC 6749 §4.4; the VTN and the servicer API
share the route), fetches a new one on a 401 or shortly before expiry, and otherwise is
:class:`httpx.Client`. The stack's main loop is synchronous and does one request at a time, so
no event loop is needed for it.

:func:`unanswered_events` is the observer's check that no report was lost: every DR event (F2)
on the VTN has a plan report (F4) covering each resource it targets, and every potential
request (F1) a potential report covering each targeted resource — read from the VTN's side,
independent of what the servicer concluded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from drready.openadr.models import Event
from drready.openadr.profile import (
    PLAN_REPORT,
    POTENTIAL_REPORT,
    is_dr_event,
    is_potential_request,
)
from drready.security.tls import client_ssl_context

__all__ = ["TokenClient", "fetch_all", "unanswered_events"]

#: Fetch a new token when less than this share of its lifetime is left.
_REFRESH_SHARE = 0.2
#: Records per page when listing (the VTN's largest page).
PAGE = 50


class TokenClient:
    """HTTPS with OAuth2 client credentials against ``base_url`` (see the module docstring).

    Parameters
    ----------
    base_url : str
        ``https://host:port`` of the server; its token endpoint is ``/auth/token``.
    client_id, client_secret : str
    ca_file : str
        PEM CA the server's certificate must chain to.
    timeout_s : float
        Per request.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        ca_file: str,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._id = client_id
        self._secret = client_secret
        self._http = httpx.Client(
            base_url=self.base_url, verify=client_ssl_context(ca_file), timeout=timeout_s
        )
        self._token: str | None = None
        self._renew_at = 0.0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TokenClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _fetch_token(self) -> str:
        answer = self._http.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self._id,
                "client_secret": self._secret,
            },
        )
        answer.raise_for_status()
        body = answer.json()
        lifetime = float(body.get("expires_in", 60))
        self._renew_at = time.monotonic() + lifetime * (1.0 - _REFRESH_SHARE)
        token: str = body["access_token"]
        return token

    def request(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request with a bearer token (a new token and one retry after a 401)."""
        for attempt in range(2):
            if self._token is None or time.monotonic() >= self._renew_at:
                self._token = self._fetch_token()
            answer = self._http.request(
                method,
                path,
                json=json,
                params=params,
                headers={**(headers or {}), "Authorization": f"Bearer {self._token}"},
            )
            if answer.status_code != 401 or attempt:
                return answer
            self._token = None
        raise AssertionError("unreachable")

    def get(self, path: str, **params: str | int) -> httpx.Response:
        return self.request("GET", path, params=params or None)


def fetch_all(client: TokenClient, path: str, **params: str | int) -> Iterator[dict[str, Any]]:
    """Every record of a paged OpenADR list (``skip``/``limit``)."""
    skip = 0
    while True:
        answer = client.get(path, skip=skip, limit=PAGE, **params)
        answer.raise_for_status()
        page: list[dict[str, Any]] = answer.json()
        yield from page
        if len(page) < PAGE:
            return
        skip += len(page)


def _targets(event: Mapping[str, Any]) -> set[str]:
    """The resource names an event targets: OpenADR 3.1 targets are plain strings (the
    profile puts resource names there); a 3.0-style ``{"type": "RESOURCE_NAME", "values"}``
    map is read too."""
    names: set[str] = set()
    for target in event.get("targets") or ():
        if isinstance(target, str):
            names.add(target)
        elif isinstance(target, Mapping) and target.get("type") == "RESOURCE_NAME":
            names.update(str(v) for v in target.get("values") or ())
    return names


def unanswered_events(observer: TokenClient) -> list[dict[str, Any]]:
    """DR events and potential requests on the VTN that some targeted resource did not answer
    (see the module docstring): one entry per event with the resources missing."""
    answered: dict[tuple[str, str], set[str]] = {}
    for report in fetch_all(observer, "/reports"):
        key = (str(report.get("eventID")), str(report.get("reportName")))
        covered = answered.setdefault(key, set())
        covered.update(str(r.get("resourceName")) for r in report.get("resources") or ())
    out = []
    for raw in fetch_all(observer, "/events"):
        event = Event.model_validate(raw)
        if is_dr_event(event):
            kind = PLAN_REPORT
        elif is_potential_request(event):
            kind = POTENTIAL_REPORT
        else:
            continue
        missing = _targets(raw) - answered.get((str(raw["id"]), kind), set())
        if missing:
            out.append(
                {
                    "event_id": raw["id"],
                    "event_name": raw.get("eventName"),
                    "report": kind,
                    "missing": sorted(missing),
                }
            )
    return out
