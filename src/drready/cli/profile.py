"""``drready profile vectors --out DIR``: the published test vectors of drready's profiles and
DR-potential method (D1, D4, E1; issue 17 item 3).

Writes :func:`drready.evaluation.publish_vectors.write_vectors`' files — ECHONET Lite frames as
hex with their decoded meaning, OpenADR 3.1.0 objects as JSON, the JSON Schemas of the private
payload types, and the method vectors — and prints how many of each, so a maker, an aggregator
or a regulator can test an implementation of ``docs/profile-echonet-lite.md``,
``docs/profile-openadr3.md`` and ``docs/dr-potential-method.md`` without drready's code.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from drready.cli.common import console, fail, sub_app
from drready.evaluation.publish_vectors import write_vectors

app = sub_app("D1/E1: the profiles' published test vectors (ECHONET Lite, OpenADR, method).")


@app.command("vectors")
def vectors(
    out: Annotated[Path, typer.Option(help="Folder to write the vectors to (created).")],
) -> None:
    """Write the test vectors of both profiles and of the method, with an index.json."""
    if out.exists() and not out.is_dir():
        fail("--out", f"{out} exists and is not a folder")
    try:
        written = write_vectors(out)
    except OSError as err:
        fail("--out", f"cannot write to {out}: {err.strerror or err}")
    counts = Counter(v.path.split("/", 1)[0] for v in written)
    for kind, n in sorted(counts.items()):
        console.print(f"{kind}: {n} files")
    console.print(f"index: {out / 'index.json'}")
