"""JSON Schemas of the unified data model, for adapters and other languages (D1, C1, D4).

:data:`MODELS` lists every domain model by name; :func:`write_json_schemas` writes one
``<ModelName>.schema.json`` per model (pydantic's serialization-mode schema), so that the data
model can be published and checked outside Python.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from .flexibility import EnvelopeSlot, FlexibilityEnvelope
from .ids import DeviceId
from .plan import HeatingPlan, PlanSlot
from .power import PowerSample
from .requests import DrRequest, DrResponse
from .time import SlotGrid

__all__ = ["MODELS", "write_json_schemas"]

#: Every model of the unified data model, by class name.
MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (
        DeviceId,
        SlotGrid,
        EnvelopeSlot,
        FlexibilityEnvelope,
        DrRequest,
        DrResponse,
        PlanSlot,
        HeatingPlan,
        PowerSample,
    )
}


def write_json_schemas(out_dir: Path) -> list[Path]:
    """Write ``<ModelName>.schema.json`` for every model in :data:`MODELS` into ``out_dir``.

    The folder is created if needed; existing files are overwritten. Returns the paths written,
    in the order of :data:`MODELS`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, model in MODELS.items():
        schema = model.model_json_schema(mode="serialization")
        path = out_dir / f"{name}.schema.json"
        path.write_text(
            json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        written.append(path)
    return written
