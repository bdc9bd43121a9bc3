"""Sans-IO ECHONET Lite frame codec: ``decode_frame(bytes) -> Frame``, ``encode_frame(Frame)``.

Serves C1 (machine-readable communication between home gateway and device): every message the
device and the HEMS controller exchange passes through these two functions. No sockets here;
only an asyncio UDP adapter elsewhere touches the network (style guide rule 6).

Why hand-written: no maintained sans-IO ECHONET Lite codec exists on PyPI that validates against
the Machine Readable Appendix (MRA). ``pychonet`` is a controller with its own I/O loop and
per-EPC parsing functions; it cannot be used as a pure codec on either side of the link.

Frame layout (format 1, "specified message format")::

    EHD1 EHD2 TID(2, big-endian) SEOJ(3) DEOJ(3) ESV OPC (EPC PDC EDT)* [OPCGet (EPC PDC EDT)*]

The second property block (OPCGet) exists only for the SetGet family (ESV 0x6E, 0x7E, 0x5E).

References
----------
ECHONET Lite Specification Ver. 1.14, Part II "ECHONET Lite Communications Middleware
Specifications", chapter 3.2 "Frame format" (EHD1 = 0x10, EHD2 = 0x81 format 1 / 0x82 format
2) and Table 3-9/3-10 (ESV codes: requests 0x60–0x6F, responses/notifications 0x70–0x7F,
"not possible" responses 0x50–0x5F); chapter 4.1 (UDP port 3610, multicast 224.0.23.0).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from drready.echonet.errors import FrameError, UnsupportedFrameFormat

__all__ = [
    "CONTROLLER",
    "ECHONET_PORT",
    "EHD1",
    "EHD2_FORMAT1",
    "EHD2_FORMAT2",
    "EOJ",
    "ESV",
    "MULTICAST_GROUP",
    "NODE_PROFILE",
    "Frame",
    "Property",
    "decode_frame",
    "encode_frame",
    "is_request",
    "response_for",
    "sna_for",
]

#: ECHONET Lite header 1: "ECHONET Lite" protocol type.
EHD1 = 0x10
#: ECHONET Lite header 2: format 1 (specified message format) — the one this codec decodes.
EHD2_FORMAT1 = 0x81
#: ECHONET Lite header 2: format 2 (arbitrary message format) — raises UnsupportedFrameFormat.
EHD2_FORMAT2 = 0x82
#: UDP port of ECHONET Lite.
ECHONET_PORT = 3610
#: IPv4 multicast group of ECHONET Lite.
MULTICAST_GROUP = "224.0.23.0"

_HEADER_LEN = 12  # EHD1 EHD2 TID(2) SEOJ(3) DEOJ(3) ESV OPC


class ESV(IntEnum):
    """ECHONET Lite service codes (Part II, Table 3-9 and 3-10)."""

    SETI_SNA = 0x50
    SETC_SNA = 0x51
    GET_SNA = 0x52
    INF_SNA = 0x53
    SETGET_SNA = 0x5E
    SETI = 0x60
    SETC = 0x61
    GET = 0x62
    INF_REQ = 0x63
    SETGET = 0x6E
    SET_RES = 0x71
    GET_RES = 0x72
    INF = 0x73
    INFC = 0x74
    INFC_RES = 0x7A
    SETGET_RES = 0x7E


#: ESVs whose frame carries two property blocks (OPCSet then OPCGet).
_SETGET_FAMILY = frozenset({ESV.SETGET, ESV.SETGET_RES, ESV.SETGET_SNA})

_RESPONSE = {
    ESV.SETI: ESV.SET_RES,
    ESV.SETC: ESV.SET_RES,
    ESV.GET: ESV.GET_RES,
    ESV.INF_REQ: ESV.INF,
    ESV.SETGET: ESV.SETGET_RES,
    ESV.INFC: ESV.INFC_RES,
}

_SNA = {
    ESV.SETI: ESV.SETI_SNA,
    ESV.SETC: ESV.SETC_SNA,
    ESV.GET: ESV.GET_SNA,
    ESV.INF_REQ: ESV.INF_SNA,
    ESV.SETGET: ESV.SETGET_SNA,
}


def is_request(esv: int) -> bool:
    """True for the request ESVs 0x60–0x6F (SetI, SetC, Get, INF_REQ, SetGet)."""
    return 0x60 <= esv <= 0x6F


def response_for(esv: int) -> ESV:
    """The ESV of the (positive) response to request ``esv``.

    SetI/SetC → Set_Res, Get → Get_Res, INF_REQ → INF, SetGet → SetGet_Res, INFC → INFC_Res.
    ``SetI`` is answered only when it fails (with SetI_SNA), but its positive response code is
    still Set_Res. Raises ``ValueError`` for an ESV that has no response.
    """
    try:
        return _RESPONSE[ESV(esv)]
    except (ValueError, KeyError) as err:
        raise ValueError(f"ESV 0x{esv:02X} has no response service") from err


def sna_for(esv: int) -> ESV:
    """The "service not available" ESV answering a request ``esv`` that cannot be processed."""
    try:
        return _SNA[ESV(esv)]
    except (ValueError, KeyError) as err:
        raise ValueError(f"ESV 0x{esv:02X} has no SNA response service") from err


def _check_byte(name: str, value: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be an int in 0–255, got {value!r}")


@dataclass(frozen=True)
class EOJ:
    """ECHONET Lite object: class group code, class code, instance code (one byte each)."""

    class_group: int
    class_code: int
    instance: int

    def __post_init__(self) -> None:
        _check_byte("class_group", self.class_group)
        _check_byte("class_code", self.class_code)
        _check_byte("instance", self.instance)

    @property
    def class_id(self) -> int:
        """Class group and class code as one 16-bit number, e.g. 0x026B."""
        return (self.class_group << 8) | self.class_code

    def to_bytes(self) -> bytes:
        """The three bytes X1 X2 X3."""
        return bytes((self.class_group, self.class_code, self.instance))

    @classmethod
    def from_bytes(cls, data: bytes) -> EOJ:
        """Inverse of :meth:`to_bytes`; ``ValueError`` unless exactly 3 bytes."""
        if len(data) != 3:
            raise ValueError(f"an EOJ is 3 bytes, got {len(data)}")
        return cls(data[0], data[1], data[2])

    @classmethod
    def parse(cls, text: str) -> EOJ:
        """Parse six hex digits, optionally prefixed by ``0x``: ``"0x026B01"`` or ``"026B01"``."""
        digits = text.strip()
        if digits[:2].lower() == "0x":
            digits = digits[2:]
        if len(digits) != 6:
            raise ValueError(f"an EOJ is 6 hex digits, got {text!r}")
        try:
            return cls.from_bytes(bytes.fromhex(digits))
        except ValueError as err:
            raise ValueError(f"not a hex EOJ: {text!r}") from err

    def __str__(self) -> str:
        return self.to_bytes().hex().upper()


#: Node profile object, instance 1 (general node).
NODE_PROFILE = EOJ(0x0E, 0xF0, 0x01)
#: Controller object, instance 1 (what a HEMS controller uses as SEOJ).
CONTROLLER = EOJ(0x05, 0xFF, 0x01)


@dataclass(frozen=True)
class Property:
    """One ``EPC PDC EDT`` triple; PDC is implied by ``len(edt)``."""

    epc: int
    edt: bytes = b""

    def __post_init__(self) -> None:
        _check_byte("epc", self.epc)
        if not isinstance(self.edt, bytes):
            raise TypeError(f"edt must be bytes, got {type(self.edt).__name__}")
        if len(self.edt) > 0xFF:
            raise ValueError(f"EPC 0x{self.epc:02X}: EDT of {len(self.edt)} bytes exceeds 255")

    @property
    def pdc(self) -> int:
        """Property data counter: the EDT length in bytes."""
        return len(self.edt)


@dataclass(frozen=True)
class Frame:
    """A decoded format-1 ECHONET Lite frame.

    ``esv`` stays an ``int`` so unknown services decode without error; compare with :class:`ESV`
    members or call ``ESV(frame.esv)``. For SetGet, SetGet_Res and SetGet_SNA, ``properties`` is
    the Set list (OPCSet) and ``get_properties`` the Get list (OPCGet); for every other ESV
    ``get_properties`` must be empty.
    """

    tid: int
    seoj: EOJ
    deoj: EOJ
    esv: int
    properties: tuple[Property, ...] = ()
    get_properties: tuple[Property, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.tid, int) or not 0 <= self.tid <= 0xFFFF:
            raise ValueError(f"tid must be an int in 0–65535, got {self.tid!r}")
        _check_byte("esv", self.esv)
        if len(self.properties) > 0xFF or len(self.get_properties) > 0xFF:
            raise ValueError("at most 255 properties per block (OPC is one byte)")
        if self.get_properties and self.esv not in _SETGET_FAMILY:
            raise ValueError(
                f"get_properties is only for SetGet services, not ESV 0x{self.esv:02X}"
            )

    @property
    def is_setget(self) -> bool:
        """True when the frame carries the two blocks OPCSet and OPCGet."""
        return self.esv in _SETGET_FAMILY


def _decode_block(data: bytes, pos: int, what: str) -> tuple[tuple[Property, ...], int]:
    """Decode ``OPC (EPC PDC EDT)*`` starting at ``pos``; return the properties and new offset."""
    if pos >= len(data):
        raise FrameError(f"truncated frame: {what} missing at byte offset {pos}")
    count = data[pos]
    pos += 1
    props: list[Property] = []
    for index in range(count):
        if pos + 2 > len(data):
            raise FrameError(
                f"truncated frame: {what} announces {count} properties, property {index} "
                f"(EPC, PDC) missing at byte offset {pos}"
            )
        epc, pdc = data[pos], data[pos + 1]
        start = pos + 2
        end = start + pdc
        if end > len(data):
            raise FrameError(
                f"truncated frame: EPC 0x{epc:02X} PDC {pdc} at byte offset {pos + 1} runs "
                f"past the end of the {len(data)}-byte frame"
            )
        props.append(Property(epc, bytes(data[start:end])))
        pos = end
    return tuple(props), pos


def decode_frame(data: bytes) -> Frame:
    """Decode one ECHONET Lite datagram.

    Strict: a truncated header or property, fewer properties than OPC announces, or bytes after
    the last property raise :class:`FrameError` (never ``IndexError``). ``OPC = 0`` is allowed.
    EHD1 ≠ 0x10 raises :class:`FrameError`; EHD2 0x82 (format 2) or any other EHD2 raises
    :class:`UnsupportedFrameFormat`.
    """
    data = bytes(data)
    if len(data) < 2:
        raise FrameError(f"truncated frame: {len(data)} bytes, header EHD1 EHD2 needs 2")
    if data[0] != EHD1:
        raise FrameError(f"EHD1 at byte offset 0 is 0x{data[0]:02X}, expected 0x10")
    if data[1] == EHD2_FORMAT2:
        raise UnsupportedFrameFormat("EHD2 at byte offset 1 is 0x82 (format 2, arbitrary)")
    if data[1] != EHD2_FORMAT1:
        raise UnsupportedFrameFormat(f"unknown EHD2 0x{data[1]:02X} at byte offset 1")
    if len(data) < _HEADER_LEN - 1:
        raise FrameError(
            f"truncated frame: {len(data)} bytes, header up to ESV needs {_HEADER_LEN - 1}"
        )
    tid = int.from_bytes(data[2:4], "big")
    seoj = EOJ(data[4], data[5], data[6])
    deoj = EOJ(data[7], data[8], data[9])
    esv = data[10]
    props, pos = _decode_block(data, 11, "OPC")
    get_props: tuple[Property, ...] = ()
    if esv in _SETGET_FAMILY:
        get_props, pos = _decode_block(data, pos, "OPCGet")
    if pos != len(data):
        raise FrameError(
            f"{len(data) - pos} trailing bytes after the last property, from byte offset {pos}"
        )
    return Frame(tid, seoj, deoj, esv, props, get_props)


def _encode_block(props: tuple[Property, ...]) -> bytes:
    out = bytearray([len(props)])
    for prop in props:
        out += bytes((prop.epc, prop.pdc))
        out += prop.edt
    return bytes(out)


def encode_frame(frame: Frame) -> bytes:
    """Encode ``frame`` as a format-1 datagram (inverse of :func:`decode_frame`)."""
    out = bytearray((EHD1, EHD2_FORMAT1))
    out += frame.tid.to_bytes(2, "big")
    out += frame.seoj.to_bytes()
    out += frame.deoj.to_bytes()
    out.append(frame.esv)
    out += _encode_block(frame.properties)
    if frame.is_setget:
        out += _encode_block(frame.get_properties)
    return bytes(out)
