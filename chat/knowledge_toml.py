"""Typed reads of the knowledge base's TOML files, with errors that name file and key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from chat.knowledge_types import KnowledgeError


class Table:
    """A TOML table with its file and path, for typed reads with clear errors."""

    def __init__(self, file: str, path: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise KnowledgeError(f"{file}: {path}: expected a table")
        self.file, self.path, self.data = file, path, data

    def fail(self, key: str, problem: str) -> KnowledgeError:
        return KnowledgeError(f"{self.file}: {self.path}.{key}: {problem}".strip())

    def only(self, *allowed: str) -> None:
        extra = sorted(set(self.data) - set(allowed))
        if extra:
            raise self.fail(extra[0], "unknown key")

    def get(self, key: str, kind: type, default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "missing")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
            raise self.fail(key, f"expected {kind.__name__}")
        return value

    def text(self, key: str, default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value is not None and default is ... and not value.strip():
            raise self.fail(key, "must not be empty")
        return value

    def texts(self, key: str, default: Any = ...) -> tuple[str, ...]:
        values = self.get(key, list, default)
        if not all(isinstance(v, str) and v.strip() for v in values):
            raise self.fail(key, "expected a list of non-empty strings")
        return tuple(values)

    def sub(self, key: str) -> Table:
        return Table(self.file, f"{self.path}.{key}".lstrip("."), self.get(key, dict))


def read_table(directory: Path, name: str) -> Table:
    path = directory / name
    try:
        with path.open("rb") as handle:
            return Table(name, "", tomllib.load(handle))
    except FileNotFoundError:
        raise KnowledgeError(f"{name}: file is missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeError(f"{name}: invalid TOML: {exc}") from None
