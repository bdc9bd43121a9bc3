"""Property maps (EPC 0x9D status-change announcement, 0x9E Set, 0x9F Get), both notations (C1).

A property map tells a controller which EPCs a device object supports; the home gateway reads
it before anything else. Two notations exist:

* fewer than 16 properties: ``[count, epc₁, …, epcₙ]``;
* 16 or more: ``[count]`` followed by a 16-byte bitmap in which byte *i* (0–15), bit *j* (0–7,
  bit 0 = least significant) stands for EPC ``0x80 + i + 0x10·j`` — the low nibble of the EPC
  picks the byte, the high nibble (8…F) the bit.

The node profile's instance and class lists (0xD3–0xD7) are not property maps and are handled
by the generic MRA codec in :mod:`drready.echonet.values`.

References
----------
ECHONET Lite Specification Ver. 1.14, Part II, Appendix 1 "Property map description format"
(description format 1 / 2). The bitmap layout was checked against the test vectors of
smdn/Smdn.Net.EchonetLite (``PropertyMapSerializerTests``: EPCs 0x80–0x8F give ``01`` in all 16
bytes, 0xF0–0xFF give ``80``, and a device map ``16 0B 01 01 09 00 00 00 01 01 01 03 03 03 03
03 03`` lists 22 EPCs 0x80…0xB3), found with the ``search`` tool; pychonet and echowand use the
same layout.
"""

from __future__ import annotations

from collections.abc import Iterable

from drready.echonet.errors import PropertyValueError

__all__ = ["decode_property_map", "encode_property_map"]

_BITMAP_THRESHOLD = 16  # from this many EPCs on, the bitmap notation is used
_BITMAP_LEN = 16


def encode_property_map(epcs: Iterable[int]) -> bytes:
    """EDT of a property map listing ``epcs`` (duplicates collapse; each must be 0x80–0xFF).

    >>> encode_property_map([0x80, 0x9F, 0xE0]).hex()
    '03809fe0'
    """
    unique = sorted(set(epcs))
    for epc in unique:
        if not isinstance(epc, int) or not 0x80 <= epc <= 0xFF:
            raise ValueError(f"a property map lists EPCs 0x80–0xFF, got {epc!r}")
    if len(unique) < _BITMAP_THRESHOLD:
        return bytes([len(unique), *unique])
    bitmap = bytearray(_BITMAP_LEN)
    for epc in unique:
        offset = epc - 0x80
        bitmap[offset & 0x0F] |= 1 << (offset >> 4)
    return bytes([len(unique)]) + bytes(bitmap)


def decode_property_map(edt: bytes, *, epc: int = 0x9F) -> tuple[int, ...]:
    """Sorted EPCs listed by a property-map EDT in either notation.

    ``epc`` (default 0x9F) only names the property in the :class:`PropertyValueError` raised
    for an empty EDT, a wrong length, or a count that does not match the listed EPCs.
    """
    if not edt:
        raise PropertyValueError(epc, "empty property map")
    count = edt[0]
    body = edt[1:]
    if count < _BITMAP_THRESHOLD:
        if len(body) != count:
            raise PropertyValueError(
                epc, f"property map announces {count} EPCs but lists {len(body)}"
            )
        listed = sorted(set(body))
        if len(listed) != count:
            raise PropertyValueError(epc, "property map lists an EPC twice")
        bad = [e for e in listed if e < 0x80]
        if bad:
            raise PropertyValueError(epc, f"property map lists EPC 0x{bad[0]:02X} < 0x80")
        return tuple(listed)
    if len(body) != _BITMAP_LEN:
        raise PropertyValueError(
            epc, f"bitmap property map needs 16 bytes after the count, got {len(body)}"
        )
    found = sorted(
        0x80 + i + 0x10 * j for i in range(_BITMAP_LEN) for j in range(8) if body[i] >> j & 1
    )
    if len(found) != count:
        raise PropertyValueError(
            epc, f"property map announces {count} EPCs but its bitmap has {len(found)}"
        )
    return tuple(found)
