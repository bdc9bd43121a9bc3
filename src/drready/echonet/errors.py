"""One exception tree for the ECHONET Lite codec (C1: home gateway ↔ device communication).

* :class:`FrameError` — the bytes on the wire are not a well-formed ECHONET Lite frame; the
  message says what is wrong and at which byte offset.
* :class:`UnsupportedFrameFormat` — a well-formed header announcing a format this codec does not
  decode (EHD2 = 0x82 "arbitrary message format", or an unknown EHD2). Callers pass these over.
* :class:`PropertyValueError` — an EDT (or a Python value to be encoded) is not a valid value of
  the property's MRA schema; it carries the offending ``epc``.

These three are :class:`ValueError` subclasses as well, so generic input validation catches them.
The peer's answers, well-formed but not what was asked for:

* :class:`EchonetRefusedError` — a node refused a Set (``*_SNA``) or gave no value for a Get.
* :class:`ForeignAnswerError` — the DR response 0xF1 names another request than the one just set
  (another controller's Set came in between); see :mod:`drready.echonet.extension`.
"""

from __future__ import annotations

__all__ = [
    "EchonetError",
    "EchonetRefusedError",
    "ForeignAnswerError",
    "FrameError",
    "PropertyValueError",
    "UnsupportedFrameFormat",
]


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


class EchonetRefusedError(EchonetError, RuntimeError):
    """The node refused a Set (answered ``SetC_SNA``) or gave no value for a Get.

    Also a :class:`RuntimeError`, as it was before it joined this tree.
    """


class ForeignAnswerError(EchonetError):
    """The DR response (0xF1) answers another request than the one just set (0xF0)."""
