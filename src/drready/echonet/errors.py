"""One exception tree for the ECHONET Lite codec (C1: home gateway ↔ device communication).

* :class:`FrameError` — the bytes on the wire are not a well-formed ECHONET Lite frame; the
  message says what is wrong and at which byte offset.
* :class:`UnsupportedFrameFormat` — a well-formed header announcing a format this codec does not
  decode (EHD2 = 0x82 "arbitrary message format", or an unknown EHD2). Callers pass these over.
* :class:`PropertyValueError` — an EDT (or a Python value to be encoded) is not a valid value of
  the property's MRA schema; it carries the offending ``epc``.

All of them are :class:`ValueError` subclasses as well, so generic input validation catches them.
"""

from __future__ import annotations

__all__ = ["EchonetError", "FrameError", "PropertyValueError", "UnsupportedFrameFormat"]


class EchonetError(Exception):
    """Base class of every error raised by :mod:`drready.echonet`."""


class FrameError(EchonetError, ValueError):
    """A malformed ECHONET Lite frame (truncated, trailing bytes, bad header, …)."""


class UnsupportedFrameFormat(FrameError):  # noqa: N818 - public API name
    """A frame in a format this codec does not decode (EHD2 0x82 or an unknown EHD2)."""


class PropertyValueError(EchonetError, ValueError):
    """An EDT or value that is not valid for property ``epc``.

    Parameters
    ----------
    epc : int
        The ECHONET property code the value belongs to.
    message : str
        What is wrong. Prefixed with ``"EPC 0xNN: "`` unless it already names the EPC that way.
    """

    epc: int

    def __init__(self, epc: int, message: str) -> None:
        prefix = f"EPC 0x{epc:02X}"
        if not message.startswith(prefix):
            message = f"{prefix}: {message}"
        super().__init__(message)
        self.epc = epc
