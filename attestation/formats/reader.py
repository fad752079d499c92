"""A bounds-checked cursor over bytes: every read names its field, so bad input fails as FormatError(field)."""

from __future__ import annotations

from attestation.errors import FormatError


class Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError(field, f"needs {n} bytes at offset {self.pos}, {max(0, len(self.data) - self.pos)} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little")

    def u32(self, field: str) -> int:
        return int.from_bytes(self.take(4, field), "little")

    def u64(self, field: str) -> int:
        return int.from_bytes(self.take(8, field), "little")

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos
