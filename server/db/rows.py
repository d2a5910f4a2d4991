"""Rows mapped by column name into msgspec Structs, never by position.

A column is matched to the field of the same Python name (`first_name`), whatever the
field's name on the wire (`firstName`); nested JSON columns decode into nested Structs.
A column the Struct does not know is an error, so a query and its Struct stay in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar, cast

import msgspec
from psycopg import AsyncCursor
from psycopg.rows import AsyncRowFactory, RowMaker

T = TypeVar("T")


@cache
def _wire_names(cls: Any) -> dict[str, str]:
    return {f.name: f.encode_name for f in msgspec.structs.fields(cls)}


def struct_row(cls: type[T]) -> AsyncRowFactory[T]:
    """A psycopg row factory building `cls` from each row, column names to field names."""
    wire = _wire_names(cast(Any, cls))

    def factory(cursor: AsyncCursor[Any]) -> RowMaker[T]:
        description = cursor.description or []
        keys = []
        for column in description:
            if column.name not in wire:
                raise TypeError(f"column {column.name!r} is not a field of {cls.__name__}")
            keys.append(wire[column.name])

        def make(values: Sequence[Any]) -> T:
            return msgspec.convert(dict(zip(keys, values, strict=True)), cls)

        return make

    return factory


def narrowed(row: Any, cls: type[T]) -> T:
    """`row` (a Struct with extra query columns, such as a window's total) as a plain `cls`."""
    return cls(**{name: getattr(row, name) for name in cls.__struct_fields__})  # type: ignore[attr-defined]
