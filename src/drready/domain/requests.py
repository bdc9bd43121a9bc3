"""DR requests from the servicer and the device's answer to them (F2, D1, D2).

A :class:`DrRequest` asks a unit (or group) to consume more (up-DR, 上げDR) or less (down-DR,
下げDR) energy inside a window; :class:`DrResponse` says whether the device accepted it in full,
in part (with the accepted amount) or not at all, with a reason. No deadline is imposed on when a
request may arrive (``issued_at`` may even be after ``start``): the planner decides what it can
still accept.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from .base import DomainModel, NonNegativeFloat, RequestId, ShortText, bounded_float, format_number
from .ids import DeviceId
from .time import Instant, count_window_slots
from .tolerances import REL_TOL, ZERO_KWH

__all__ = ["MAX_AMOUNT_KWH", "Direction", "DrRequest", "DrResponse", "ResponseStatus"]

#: Largest requested amount [kWh]; generous, so that group amounts fit too.
MAX_AMOUNT_KWH = 1e6

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
    """

    request_id: RequestId = Field(description="1–64 characters from [A-Za-z0-9._:-].")
    direction: Direction = Field(description="'up' (consume more) or 'down' (consume less).")
    start: Instant = Field(description="Start of the DR window (aligned).")
    end: Instant = Field(description="End of the DR window, exclusive (aligned, ≤ 48 h later).")
    amount_kwh: _Amount = Field(description="Requested energy shift inside the window [kWh].")
    issuer: ShortText = Field(default="unknown", description="Who issued the request.")
    issued_at: Instant = Field(description="When the request was issued.")

    @model_validator(mode="after")
    def _check(self) -> DrRequest:
        count_window_slots(self.start, self.end)
        return self

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

        Accepted if ``accepted_kwh ≥ requested × (1 − 1e-6)`` (stored as exactly the requested
        amount), rejected if ``≤ 1e-6`` kWh (stored as 0), partial otherwise. Tiny numeric
        overshoot (above the request, or below zero, within those tolerances) is clipped; a real
        overshoot is a ``ValueError``.
        """
        req = request.amount_kwh
        if not math.isfinite(accepted_kwh):
            raise ValueError(f"accepted_kwh must be finite, got {accepted_kwh!r}")
        if accepted_kwh < -ZERO_KWH or accepted_kwh > req * (1 + REL_TOL) + ZERO_KWH:
            raise ValueError(
                f"accepted_kwh must be in [0, {format_number(req)}] (the requested amount), "
                f"got {accepted_kwh!r}"
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
