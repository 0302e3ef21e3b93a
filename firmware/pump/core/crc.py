"""CRC-32 of stored bytes, and the error for stored bytes that fail their checks."""

try:
    from binascii import crc32 as _crc32_native

    _NATIVE_CRC = True
except ImportError:  # a port built without binascii: the bitwise fallback below
    _NATIVE_CRC = False

_CRC_POLY = 0xEDB88320  # CRC-32 (IEEE 802.3), reflected, as zlib and binascii


def crc32_bitwise(data, crc=0):
    """CRC-32 of ``data`` continuing from ``crc``, one bit at a time (no table)."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ _CRC_POLY
            else:
                crc >>= 1
    return crc ^ 0xFFFFFFFF


def crc32(data, crc=0):
    """CRC-32 of ``data`` continuing from ``crc`` (binascii's when the port has it)."""
    if _NATIVE_CRC:
        return _crc32_native(data, crc) & 0xFFFFFFFF
    return crc32_bitwise(data, crc)


class CorruptRecord(Exception):
    """Stored bytes that must not be trusted; ``str()`` says why."""
