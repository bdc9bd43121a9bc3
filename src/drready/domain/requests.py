"""DR requests from the servicer and the device's answer to them (F2, D1, D2).

A :class:`DrRequest` asks a unit (or group) to consume more (up-DR, 上げDR) or less (down-DR,
下げDR) energy inside a window; :class:`DrResponse` says whether the device accepted it in full,
in part (with the accepted amount) or not at all, with a reason. No deadline is imposed on when a
request may arrive (``issued_at`` may even be after ``start``): the planner decides what it can
still accept.

**F2 by start time alone** (the study group's wording: the unit receives *the heating start time
the DR request sets*; the amount is optional): :meth:`DrRequest.at_start_time` makes "start
heating at 13:00". Without an amount the request is *open* (``open_amount``): an up-DR request
for ``[start, start + 4 h)`` — the window of the ECHONET Lite daytime heating shift (0xCA), so
both protocols mean the same thing — whose ``amount_kwh`` is only a cap
(:data:`MAX_AMOUNT_KWH`: none). The unit then does what a set 0xCA makes it do: it moves into the
window as much heating as its plan allows (its up-DR potential there, at its confidence level,
after the requests it already honours) and answers **accepted** with that amount
(:meth:`DrResponse.from_amounts`), or **rejected** with the reason when it can move nothing.
Every planner keeps reading ``amount_kwh`` as a number: an open request is planned as a request
for its cap, which no unit's potential reaches. With an amount, the request is an ordinary one
for that window.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from .base import DomainModel, NonNegativeFloat, RequestId, ShortText, bounded_float, format_number
from .ids import DeviceId
from .time import Instant, count_window_slots
from .tolerances import REL_TOL, ZERO_KWH

__all__ = [
    "MAX_AMOUNT_KWH",
    "START_TIME_WINDOW",
    "Direction",
    "DrRequest",
    "DrResponse",
    "ResponseStatus",
]

#: Largest requested amount [kWh]; generous, so that group amounts fit too. Also the cap of an
#: open request (F2 by start time alone): no unit or group reaches it.
MAX_AMOUNT_KWH = 1e6

#: The window a heating start time opens (F2 by start time alone): 4 h, the window of the
#: ECHONET Lite daytime heating shift (EPC 0xCA/0xCD, ``device.energy_shift.SHIFT_WINDOW``).
START_TIME_WINDOW = timedelta(hours=4)

_Amount = Annotated[float, bounded_float(0.0, MAX_AMOUNT_KWH, lo_open=True)]


class Direction(StrEnum):
    """Direction of a DR request."""

    UP = "up"
    """Up-DR (上げDR): consume more inside the window (e.g. PV surplus, cheap hours)."""
    DOWN = "down"
    """Down-DR (下げDR): consume less inside the window (scarcity, price spikes)."""


class ResponseStatus(StrEnum):
    """Outcome of a DR request at the device."""

    ACCEPTED = "accepted"
    PARTIAL = "partial"
    REJECTED = "rejected"


class DrRequest(DomainModel):
    """A DR instruction (F2): shift ``amount_kwh`` up or down inside ``[start, end)``.

    ``start`` and ``end`` are on 30-minute boundaries, ``start < end`` and the window is at most
    48 h long. ``amount_kwh`` is for the addressed unit or group (0 < amount ≤ 1e6 kWh).
    ``open_amount``: F2 by start time alone (no amount asked, see the module docstring; made by
    :meth:`at_start_time`): up-DR only, ``amount_kwh`` is then a cap.
    """

    request_id: RequestId = Field(description="1–64 characters from [A-Za-z0-9._:-].")
    direction: Direction = Field(description="'up' (consume more) or 'down' (consume less).")
    start: Instant = Field(description="Start of the DR window (aligned).")
    end: Instant = Field(description="End of the DR window, exclusive (aligned, ≤ 48 h later).")
    amount_kwh: _Amount = Field(description="Requested energy shift inside the window [kWh].")
    issuer: ShortText = Field(default="unknown", description="Who issued the request.")
    issued_at: Instant = Field(description="When the request was issued.")
    open_amount: bool = Field(
        default=False,
        description="True: F2 by start time alone — no amount was asked; the unit heats from "
        "start as much as its plan allows, up to amount_kwh (a cap). Up-DR only.",
    )

    @model_validator(mode="after")
    def _check(self) -> DrRequest:
        count_window_slots(self.start, self.end)
        if self.open_amount and self.direction is not Direction.UP:
            raise ValueError(
                "direction must be 'up' when open_amount is true (a heating start time moves "
                f"heating into the window), got {self.direction.value!r}"
            )
        return self

    @classmethod
    def at_start_time(
        cls,
        request_id: str,
        start: datetime,
        issued_at: datetime,
        *,
        amount_kwh: float | None = None,
        end: datetime | None = None,
        issuer: str = "unknown",
    ) -> DrRequest:
        """F2 by start time alone: "start heating at ``start``", the amount optional.

        The window is ``[start, end)``, by default :data:`START_TIME_WINDOW` (4 h, as ECHONET
        Lite's 0xCA). Without ``amount_kwh`` the request is open (``open_amount``: the unit
        heats as much as its plan allows, capped at :data:`MAX_AMOUNT_KWH`); with it, an
        ordinary up-DR request for that amount.

        >>> from datetime import datetime, timezone
        >>> t = datetime(2026, 5, 12, 4, tzinfo=timezone.utc)
        >>> r = DrRequest.at_start_time("s-13", t, t)
        >>> r.open_amount, r.hours, r.amount_kwh == MAX_AMOUNT_KWH
        (True, 4.0, True)
        """
        return cls(
            request_id=request_id,
            direction=Direction.UP,
            start=start,
            end=end if end is not None else start + START_TIME_WINDOW,
            amount_kwh=MAX_AMOUNT_KWH if amount_kwh is None else amount_kwh,
            issuer=issuer,
            issued_at=issued_at,
            open_amount=amount_kwh is None,
        )

    @property
    def n_slots(self) -> int:
        """Number of 30-minute slots in the DR window."""
        return count_window_slots(self.start, self.end)

    @property
    def hours(self) -> float:
        """Length of the DR window [h]."""
        return self.n_slots * 0.5


class DrResponse(DomainModel):
    """The device's answer to a :class:`DrRequest` (F2).

    ``0 ≤ accepted_kwh ≤ requested_kwh``. ACCEPTED: accepted equals requested (relative
    tolerance 1e-6). PARTIAL: ``0 < accepted < requested`` and a reason. REJECTED: accepted is 0
    and a reason.
    """

    request_id: RequestId = Field(description="Id of the request answered.")
    device_id: DeviceId = Field(description="The unit (or group) answering.")
    status: ResponseStatus = Field(description="accepted / partial / rejected.")
    requested_kwh: _Amount = Field(description="Amount asked for [kWh].")
    accepted_kwh: NonNegativeFloat = Field(description="Amount the device commits to [kWh].")
    reason: str | None = Field(
        default=None, description="Why not in full; required for partial and rejected."
    )

    @model_validator(mode="after")
    def _check(self) -> DrResponse:
        acc, req = self.accepted_kwh, self.requested_kwh
        if acc > req:
            raise ValueError(
                f"accepted_kwh must be in [0, requested_kwh] = [0, {req!r}], got {acc!r}"
            )
        if self.reason is not None and not self.reason.strip():
            raise ValueError("reason must not be blank when given")
        if self.status is ResponseStatus.ACCEPTED:
            if acc < req * (1 - REL_TOL):
                raise ValueError(
                    f"accepted_kwh must equal requested_kwh (relative tolerance {REL_TOL:g}) "
                    f"when status is 'accepted', got {acc!r} < {req!r}"
                )
        elif self.status is ResponseStatus.REJECTED:
            if acc != 0.0:
                raise ValueError(f"accepted_kwh must be 0 when status is 'rejected', got {acc!r}")
        elif not 0.0 < acc < req:
            raise ValueError(
                f"accepted_kwh must be in (0, requested_kwh) = (0, {req!r}) when status is "
                f"'partial', got {acc!r}"
            )
        if self.status is not ResponseStatus.ACCEPTED and self.reason is None:
            raise ValueError(f"reason is required when status is {self.status.value!r}")
        return self

    @classmethod
    def from_amounts(
        cls,
        request: DrRequest,
        device_id: DeviceId,
        accepted_kwh: float,
        reason: str | None = None,
    ) -> DrResponse:
        """Build the response for ``accepted_kwh`` of ``request``, choosing the status.

        An open request (``request.open_amount``: F2 by start time alone) is accepted with
        whatever the unit will heat (``requested_kwh`` = ``accepted_kwh``: that is what it was
        asked for), and rejected — with the reason — when that is at most 1e-6 kWh.

        Otherwise: accepted if ``accepted_kwh ≥ requested × (1 − 1e-6)`` (stored as exactly the
        requested amount), rejected if ``≤ 1e-6`` kWh (stored as 0), partial otherwise. Tiny
        numeric overshoot (above the request, or below zero, within those tolerances) is
        clipped; a real overshoot is a ``ValueError``.
        """
        req = request.amount_kwh
        if not math.isfinite(accepted_kwh):
            raise ValueError(f"accepted_kwh must be finite, got {accepted_kwh!r}")
        if accepted_kwh < -ZERO_KWH or accepted_kwh > req * (1 + REL_TOL) + ZERO_KWH:
            raise ValueError(
                f"accepted_kwh must be in [0, {format_number(req)}] (the requested amount), "
                f"got {accepted_kwh!r}"
            )
        if request.open_amount:
            if accepted_kwh <= ZERO_KWH:
                return cls(
                    request_id=request.request_id,
                    device_id=device_id,
                    status=ResponseStatus.REJECTED,
                    requested_kwh=req,
                    accepted_kwh=0.0,
                    reason=reason or "nothing to move into the window",
                )
            amount = min(max(accepted_kwh, 0.0), req)
            return cls(
                request_id=request.request_id,
                device_id=device_id,
                status=ResponseStatus.ACCEPTED,
                requested_kwh=amount,
                accepted_kwh=amount,
                reason=reason,
            )
        if accepted_kwh >= req * (1 - REL_TOL):
            status, amount = ResponseStatus.ACCEPTED, req
        elif accepted_kwh <= ZERO_KWH:
            status, amount = ResponseStatus.REJECTED, 0.0
        else:
            status, amount = ResponseStatus.PARTIAL, accepted_kwh
        return cls(
            request_id=request.request_id,
            device_id=device_id,
            status=status,
            requested_kwh=req,
            accepted_kwh=amount,
            reason=reason,
        )
