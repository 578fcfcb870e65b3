"""Strict standard base64 decoding with the error texts of Rust's `base64` crate.

Codex decodes `fs/writeFile`'s `dataBase64` with `base64::engine::general_purpose::STANDARD`
(canonical padding required, trailing bits must be zero) and answers its `DecodeError` text;
Python's `binascii` accepts some of those inputs and words its errors differently.
"""

from __future__ import annotations

import base64
import binascii

_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_VALUE = {
    c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}
_PAD = ord("=")


class Base64Error(ValueError):
    pass


def decode_standard(text: str) -> bytes:
    data = text.encode("utf-8")
    body_end = len(data)
    while body_end and data[body_end - 1] == _PAD:
        body_end -= 1
    for offset in range(body_end):
        byte = data[offset]
        if byte not in _ALPHABET:
            raise Base64Error(f"Invalid symbol {byte}, offset {offset}.")
    padding = len(data) - body_end
    remainder = body_end % 4
    if remainder == 1:
        raise Base64Error(f"Invalid input length: {len(data)}")
    if padding and (remainder == 0 or remainder + padding > 4):
        raise Base64Error(f"Invalid symbol {_PAD}, offset {body_end}.")
    if remainder and remainder + padding != 4:
        raise Base64Error("Invalid padding")
    if remainder:
        last = data[body_end - 1]
        unused_bits = 0x0F if remainder == 2 else 0x03
        if _VALUE[last] & unused_bits:
            raise Base64Error(f"Invalid last symbol {last}, offset {body_end - 1}.")
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as exc:  # unreachable after the checks above; keep a clear text
        raise Base64Error(str(exc)) from None
