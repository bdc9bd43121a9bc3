"""Write every published test vector to a folder, with an index (issue 17 item 3).

Gathers the ECHONET Lite vectors (:mod:`drready.evaluation.vectors`), the OpenADR objects and
private type schemas (:mod:`drready.evaluation.openadr_vectors`) and the method vectors
(:mod:`drready.evaluation.method_vectors`); ``drready profile vectors --out DIR`` calls
:func:`write_vectors`.
"""

from __future__ import annotations

import json
from pathlib import Path

from drready.evaluation.method_vectors import method_vectors
from drready.evaluation.openadr_vectors import openadr_vectors, private_type_schemas
from drready.evaluation.vectors import Vector, echonet_vectors

__all__ = ["write_vectors"]


def write_vectors(out_dir: Path) -> list[Vector]:
    """Write every vector under ``out_dir`` (created) and ``index.json``; returns them."""
    vectors = echonet_vectors() + openadr_vectors() + private_type_schemas()
    vectors += [
        Vector(
            f"method/{v['name']}.json",
            f"method: {v['name']} — inputs → baseline, {len(v['expected']['windows'])} windows, "
            f"{len(v['expected']['requests'])} requests",
            v,
        )
        for v in method_vectors()
    ]
    seen: set[str] = set()
    for v in vectors:
        if v.path in seen:
            raise ValueError(f"two vectors would be written to {v.path}")
        seen.add(v.path)
        target = out_dir / v.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(v.body, indent=2, ensure_ascii=False) + "\n", "utf-8")
    index = {
        "generator": "drready profile vectors",
        "documents": {
            "echonet": "docs/profile-echonet-lite.md",
            "openadr": "docs/profile-openadr3.md",
            "method": "docs/dr-potential-method.md",
        },
        "files": [{"path": v.path, "summary": v.summary} for v in vectors],
    }
    (out_dir / "index.json").write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n")
    return vectors
