"""The key that seals proposal and command rows (seal.py), as the repositories that seal share it."""

from __future__ import annotations

from ..seal import RowSeal
from .records import StoreError


class Seals:
    """Holds the store's RowSeal (set by the engine). Without one, rows read back with
    `sealed=None` and sealed rows cannot be written."""

    def __init__(self, where: str, key_file: str) -> None:
        self.seal: RowSeal | None = None
        self._where, self._key_file = where, key_file

    def sealer(self, what: str) -> RowSeal:
        if self.seal is None:
            raise StoreError(f"cannot write {what} to the state store {self._where}: this process cannot read "
                             f"its seal key ({self._key_file}), so it is not the store's owner")
        return self.seal
