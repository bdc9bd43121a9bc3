"""The unified, protocol-neutral data model of drready (D1; F1–F6).

Every adapter (ECHONET Lite, OpenADR 3.1, the maker cloud, the servicer) maps to and from these
pydantic types; nothing protocol-specific lives here. All models are immutable, refuse unknown
keys, refuse non-finite numbers and naive datetimes, carry units in their field names and
round-trip through JSON.

- :class:`DeviceId` — which unit (F6); no personal data.
- :class:`SlotGrid` — the 30-minute time axis (≤ 48 h, ``Asia/Tokyo`` by default).
- :class:`FlexibilityEnvelope` / :class:`EnvelopeSlot` — DR potential for a window (F1).
- :class:`DrRequest` / :class:`DrResponse` — DR instruction and answer (F2).
- :class:`HeatingPlan` / :class:`PlanSlot` — the DR-aware heating plan (F3, F4).
- :class:`PowerSample` — current power consumption (F5).
"""

from .base import DomainModel
from .flexibility import EnvelopeSlot, FlexibilityEnvelope
from .ids import ECHONET_ID_LENGTH, DeviceId
from .plan import HeatingPlan, PlanSlot
from .power import MAX_POWER_W, PowerSample, PowerSource
from .requests import MAX_AMOUNT_KWH, Direction, DrRequest, DrResponse, ResponseStatus
from .schema import MODELS, write_json_schemas
from .time import (
    DEFAULT_TZ,
    MAX_HORIZON_HOURS,
    MAX_SLOTS,
    SLOT,
    SLOT_HOURS,
    SLOT_MINUTES,
    Instant,
    SlotGrid,
    count_window_slots,
    ensure_aware,
    is_slot_aligned,
    require_slot_aligned,
)

__all__ = [
    "DEFAULT_TZ",
    "ECHONET_ID_LENGTH",
    "MAX_AMOUNT_KWH",
    "MAX_HORIZON_HOURS",
    "MAX_POWER_W",
    "MAX_SLOTS",
    "MODELS",
    "SLOT",
    "SLOT_HOURS",
    "SLOT_MINUTES",
    "DeviceId",
    "Direction",
    "DomainModel",
    "DrRequest",
    "DrResponse",
    "EnvelopeSlot",
    "FlexibilityEnvelope",
    "HeatingPlan",
    "Instant",
    "PlanSlot",
    "PowerSample",
    "PowerSource",
    "ResponseStatus",
    "SlotGrid",
    "count_window_slots",
    "ensure_aware",
    "is_slot_aligned",
    "require_slot_aligned",
    "write_json_schemas",
]
