"""``/programs``: DR products of the servicer, written by BL, read by VENs through targeting
(C1; S1 object privacy; D6 targets)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from drready.openadr.models import (
    ObjectType,
    Operation,
    Program,
    ProgramCreate,
    from_wire,
    to_wire,
)
from drready.openadr.vtn.deps import (
    NotifierDep,
    PageDep,
    Principal,
    SessionDep,
    json_array_response,
    require_scopes,
    wire_body,
)
from drready.openadr.vtn.routes._params import TargetsQuery, object_id_path
from drready.openadr.vtn.service import (
    check_unique,
    commit_and_notify,
    conflict_guard,
    delete_and_notify,
    load_targeted,
    target_view,
    update_and_notify,
    utc_now,
)
from drready.openadr.vtn.store import (
    Filters,
    create_object,
    list_wire,
    new_object_id,
)
from drready.security.tokens import READ_ALL, READ_TARGETS, WRITE_PROGRAMS

router = APIRouter(prefix="/programs", tags=["programs"])

Reader = Annotated[Principal, Depends(require_scopes(READ_ALL, READ_TARGETS))]
Writer = Annotated[Principal, Depends(require_scopes(WRITE_PROGRAMS))]
Body = Annotated[ProgramCreate, Depends(wire_body(ProgramCreate))]
ProgramId = Annotated[str, object_id_path("programID")]
PROGRAM = ObjectType.PROGRAM


def _index(program: Program) -> dict[str, Any]:
    return {
        "name": program.program_name,
        "unique_key": f"PROGRAM:{program.program_name}",
        "targets": program.targets or (),
    }


def _what(name: str) -> str:
    return f"programName {name!r}"


@router.get("", response_model=list[dict[str, Any]])
async def search_all_programs(
    session: SessionDep, principal: Reader, page: PageDep, targets: TargetsQuery
) -> Response:
    """searchAllPrograms."""
    view = target_view(session=session, principal=principal, requested=targets)
    rows = list_wire(
        session=session,
        object_type=PROGRAM.value,
        filters=Filters(targets_any=view.targets_any, include_untargeted=view.include_untargeted),
        skip=page.skip,
        limit=page.limit,
    )
    return json_array_response(view.render_wire(body, targets) for body, targets in rows)


@router.post("", status_code=201)
async def create_program(
    session: SessionDep, principal: Writer, notifier: NotifierDep, body: Body
) -> dict[str, Any]:
    """createProgram."""
    check_unique(
        session=session,
        unique_key=f"PROGRAM:{body.program_name}",
        object_id=None,
        what=_what(body.program_name),
    )
    now = utc_now()
    program = Program.from_create(body, object_id=new_object_id(), now=now)
    wire = to_wire(program)
    with conflict_guard(session, _what(body.program_name)):
        create_object(
            session=session,
            object_id=program.id,
            object_type=PROGRAM.value,
            body=wire,
            created=now,
            **_index(program),
        )
    commit_and_notify(
        session=session,
        notifier=notifier,
        operation=Operation.CREATE,
        object_type=PROGRAM,
        body=wire,
        what=_what(body.program_name),
    )
    return wire


@router.get("/{programID}")
async def search_program_by_program_id(
    session: SessionDep, principal: Reader, program_id: ProgramId, targets: TargetsQuery
) -> dict[str, Any]:
    """searchProgramByProgramId (a VEN passes ``targets`` to read a targeted program)."""
    row, view = load_targeted(
        session=session,
        principal=principal,
        object_type=PROGRAM,
        object_id=program_id,
        requested=targets,
    )
    return view.render(row)


@router.put("/{programID}")
async def update_program(
    session: SessionDep, principal: Writer, notifier: NotifierDep, program_id: ProgramId, body: Body
) -> dict[str, Any]:
    """updateProgram: replace the program, keeping id and createdDateTime."""
    row, _ = load_targeted(
        session=session,
        principal=principal,
        object_type=PROGRAM,
        object_id=program_id,
        requested=None,
    )
    what = _what(body.program_name)
    check_unique(
        session=session, unique_key=f"PROGRAM:{body.program_name}", object_id=row.id, what=what
    )
    now = utc_now()
    program = from_wire(Program, row.body).replaced(body, now=now)
    wire = to_wire(program)
    return update_and_notify(
        session=session,
        notifier=notifier,
        row=row,
        object_type=PROGRAM,
        body=wire,
        modified=now,
        index=_index(program),
        what=what,
    )


@router.delete("/{programID}")
async def delete_program(
    session: SessionDep, principal: Writer, notifier: NotifierDep, program_id: ProgramId
) -> dict[str, Any]:
    """deleteProgram: answers the deleted program."""
    row, _ = load_targeted(
        session=session,
        principal=principal,
        object_type=PROGRAM,
        object_id=program_id,
        requested=None,
    )
    return delete_and_notify(
        session=session, notifier=notifier, row=row, object_type=PROGRAM, what="program"
    )
