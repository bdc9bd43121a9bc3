"""Run the ElaadNL `openadr3-client` (Python ≥ 3.12) as BL and VEN against a VTN (C1, S1).

Executed by ``tests/test_vtn_openadr3_client.py`` in its own virtual environment; prints one
JSON line with what it created and read back, exits 1 on any failure. Not imported by drready.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    for name in ("vtn", "ca", "bl-id", "bl-secret", "ven-id", "ven-secret"):
        ap.add_argument(f"--{name}", required=True)
    a = ap.parse_args()

    from openadr3_client._models.common.interval import Interval
    from openadr3_client._models.common.interval_period import IntervalPeriod
    from openadr3_client.bl.http_factory import BusinessLogicHttpClientFactory
    from openadr3_client.oadr310.models.event.event import NewEvent
    from openadr3_client.oadr310.models.event.event_payload import EventPayload, EventPayloadType
    from openadr3_client.oadr310.models.program.program import NewProgram
    from openadr3_client.oadr310.models.report.report import NewReport, ReportResource
    from openadr3_client.oadr310.models.report.report_payload import (
        ReportPayload,
        ReportPayloadType,
    )
    from openadr3_client.ven.http_factory import VirtualEndNodeHttpClientFactory
    from openadr3_client.version import OADRVersion

    ca = Path(a.ca)
    bl = BusinessLogicHttpClientFactory.create_http_bl_client(
        vtn_base_url=a.vtn,
        client_id=a.bl_id,
        client_secret=a.bl_secret,
        token_url=None,
        verify_vtn_tls_certificate=ca,
        version=OADRVersion.OADR_310,
    )
    ven = VirtualEndNodeHttpClientFactory.create_http_ven_client(
        vtn_base_url=a.vtn,
        client_id=a.ven_id,
        client_secret=a.ven_secret,
        token_url=None,
        verify_vtn_tls_certificate=ca,
        version=OADRVersion.OADR_310,
    )
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    program = bl.programs.create_program(
        new_program=NewProgram(id=None, program_name=f"interop-{uuid.uuid4().hex[:8]}")
    )
    event = bl.events.create_event(
        new_event=NewEvent(
            id=None,
            programID=program.id,
            event_name="interop-up-dr",
            interval_period=IntervalPeriod(start=start, duration=timedelta(hours=1)),
            intervals=(
                Interval(
                    id=0,
                    interval_period=None,
                    payloads=(EventPayload(type=EventPayloadType.SIMPLE, values=(1,)),),
                ),
            ),
        )
    )
    seen = [
        e.id for e in ven.events.get_events(target=None, pagination=None, program_id=program.id)
    ]
    report = ven.reports.create_report(
        new_report=NewReport(
            id=None,
            eventID=event.id,
            client_name="interop-ven",
            resources=(
                ReportResource(
                    resource_name="000005:HW0000001",
                    interval_period=IntervalPeriod(start=start, duration=timedelta(hours=1)),
                    intervals=(
                        Interval(
                            id=0,
                            interval_period=None,
                            payloads=(ReportPayload(type=ReportPayloadType.USAGE, values=(0.8,)),),
                        ),
                    ),
                ),
            ),
        )
    )
    by_bl = [
        r.id
        for r in bl.reports.get_reports(
            pagination=None, program_id=None, event_id=event.id, client_name=None
        )
    ]
    ok = event.id in seen and report.id in by_bl
    print(
        json.dumps(
            {
                "ok": ok,
                "program": program.id,
                "event": event.id,
                "report": report.id,
                "ven_saw_event": event.id in seen,
                "bl_saw_report": report.id in by_bl,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
