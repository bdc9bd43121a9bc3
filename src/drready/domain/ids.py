"""Identification of an individual water heater (F6, D1).

A :class:`DeviceId` is the maker code (the 3-byte ECHONET Lite manufacturer code) plus a serial
unique within that maker. Its string form ``"000005:HW0000001"`` is stable across both routes
(home gateway and maker cloud), and it maps one-to-one onto the 17-byte ECHONET Lite
identification number (EPC 0x83).

It deliberately holds **no personal data**: market registration data (supply-point ID, customer
name and address, retailer, contract power, …) belongs to the DR servicer, not to the device,
and the device must not be made to collect it.

References
----------
ECHONET Lite Specification, Part II (Device Object Super Class), property 0x83
"Identification number": 1 byte 0xFE (manufacturer-defined format) + 3-byte manufacturer code +
13 bytes unique within the manufacturer.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from .base import DomainModel

__all__ = ["ECHONET_ID_LENGTH", "ECHONET_ID_PREFIX", "DeviceId"]

#: Length of the ECHONET Lite identification number (EPC 0x83) [bytes].
ECHONET_ID_LENGTH = 17
#: First byte of an identification number in the manufacturer-defined format.
ECHONET_ID_PREFIX = 0xFE
_SERIAL_BYTES = 13

_MAKER_RE = re.compile(r"[0-9A-F]{6}")
_SERIAL_RE = re.compile(r"[A-Za-z0-9._\-]{1,13}")


class DeviceId(DomainModel):
    """Identifies one water heater: ECHONET Lite maker code + serial (F6).

    Contains no personal data; market registration data belongs to the servicer.
    """

    maker_code: str = Field(
        description="ECHONET Lite manufacturer code: exactly 6 uppercase hex digits (3 bytes).",
        examples=["000005"],
    )
    serial: str = Field(
        description="Serial unique within the maker: 1–13 characters from [A-Za-z0-9._-].",
        examples=["HW0000001"],
    )

    @model_validator(mode="before")
    @classmethod
    def _accept_string_form(cls, data: Any) -> Any:
        """Also accept the string form ``"MMMMMM:SERIAL"`` as input."""
        if isinstance(data, str):
            maker, sep, serial = data.partition(":")
            if not sep:
                raise ValueError(
                    f"device id must look like 'MMMMMM:SERIAL' (e.g. '000005:HW0000001'), "
                    f"got {data!r}"
                )
            return {"maker_code": maker, "serial": serial}
        return data

    @field_validator("maker_code")
    @classmethod
    def _check_maker_code(cls, value: str) -> str:
        if not _MAKER_RE.fullmatch(value):
            raise ValueError(
                f"maker_code must be exactly 6 uppercase hex digits (e.g. '000005'), got {value!r}"
            )
        return value

    @field_validator("serial")
    @classmethod
    def _check_serial(cls, value: str) -> str:
        if not _SERIAL_RE.fullmatch(value):
            raise ValueError(f"serial must be 1–13 characters from [A-Za-z0-9._-], got {value!r}")
        return value

    def __str__(self) -> str:
        return f"{self.maker_code}:{self.serial}"

    @classmethod
    def parse(cls, s: str) -> DeviceId:
        """Parse the string form ``"000005:HW0000001"`` (inverse of ``str()``)."""
        return cls.model_validate(s)

    def to_echonet_id(self) -> bytes:
        """The 17-byte ECHONET Lite identification number (EPC 0x83).

        ``0xFE`` + 3 maker-code bytes + the serial in ASCII, right-padded with ``0x00`` to 13
        bytes.
        """
        serial = self.serial.encode("ascii").ljust(_SERIAL_BYTES, b"\x00")
        return bytes([ECHONET_ID_PREFIX]) + bytes.fromhex(self.maker_code) + serial

    @classmethod
    def from_echonet_id(cls, b: bytes) -> DeviceId:
        """Inverse of :meth:`to_echonet_id`.

        Raises
        ------
        ValueError
            If ``b`` is not 17 bytes, does not start with 0xFE, or its serial part is empty,
            has a non-NUL byte after the padding, or is not from [A-Za-z0-9._-].
        """
        if len(b) != ECHONET_ID_LENGTH:
            raise ValueError(
                f"echonet id must be exactly {ECHONET_ID_LENGTH} bytes, got {len(b)} bytes"
            )
        if b[0] != ECHONET_ID_PREFIX:
            raise ValueError(
                f"echonet id must start with 0x{ECHONET_ID_PREFIX:02X} "
                f"(manufacturer-defined format), got 0x{b[0]:02X}"
            )
        raw_serial = bytes(b[4:])
        serial = raw_serial.rstrip(b"\x00")
        if b"\x00" in serial:
            raise ValueError(
                f"echonet id serial must be ASCII right-padded with 0x00, got {raw_serial.hex()}"
            )
        try:
            serial_text = serial.decode("ascii")
        except UnicodeDecodeError as err:
            raise ValueError(f"echonet id serial must be ASCII, got {raw_serial.hex()}") from err
        return cls(maker_code=bytes(b[1:4]).hex().upper(), serial=serial_text)
