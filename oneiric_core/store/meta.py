"""The small key/value table (JSON values): the chain's anchor and head, retention's report, ..."""

from __future__ import annotations

import json
from typing import Any

from .backend import Backend
from .codec import _loads


class MetaRepo:
    def __init__(self, db: Backend) -> None:
        self.db = db

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self.db.read("SELECT value FROM meta WHERE key = ?", (key,))
        if not rows or rows[0][0] is None:
            return default
        return _loads(rows[0][0], default)

    def delete_meta(self, key: str) -> None:
        self.db.write(lambda conn: conn.execute("DELETE FROM meta WHERE key = ?", (key,)))

    def set_meta(self, key: str, value: Any) -> None:
        text = json.dumps(value, default=str)
        self.db.write(
            lambda conn: conn.execute(self.db.dialect.upsert("meta", ("key", "value"), ("key",)), (key, text))
        )
