"""The chat turn's fixed statements, without the ORM compiling them on every call.

A queryset is compiled to SQL each time it runs: ~0.3 to 0.7 ms of CPU per statement
on this machine, more than SQLite takes to run it, and a chat turn runs a dozen of
them (bench/bench_turn.py; profile in the issue 8 note). These helpers build each
statement's SQL once per shape and database vendor, and convert values with the
model fields' own methods — ``get_db_prep_save`` on the way in, the backend's and
the field's converters on the way out — so application-level encryption, JSON and
datetimes behave exactly as through the ORM.

Conditions are ``(field, operator, value)`` triples joined by AND; names are model
field names (or attnames), checked against the model, so no caller writes SQL.
``insert`` sends no signals: a model with save receivers falls back to ``save()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar, cast

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model
from django.db.models.signals import post_save, pre_save

M = TypeVar("M", bound=Model)

Condition = tuple[str, str, Any]
OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})

_SQL: dict[tuple[Any, ...], tuple[str, tuple[Field, ...]]] = {}
_CONVERTERS = "_stepsync_statement_converters"  # per-connection cache attribute


def _field(model: type[Model], name: str) -> Field:
    field = model._meta.get_field(name)
    if not getattr(field, "concrete", False):
        raise ValueError(f"{model._meta.label}.{name} is not a column")
    return field  # type: ignore[return-value]  # concrete: a Field


def _db() -> BaseDatabaseWrapper:
    """This thread's default connection itself: ``django.db.connection`` is a proxy
    that looks the connection up again on every attribute (~2 % of a chat turn
    when each field conversion went through it)."""
    return connections[DEFAULT_DB_ALIAS]


def _quoted(connection: BaseDatabaseWrapper, field: Field) -> str:
    return connection.ops.quote_name(cast(str, field.column))  # concrete: has one


def _where(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    where: Sequence[Condition],
    table: str = "",
) -> tuple[str, list[Field]]:
    parts, fields = [], []
    for name, op, _ in where:
        if op not in OPERATORS:
            raise ValueError(f"unsupported operator {op!r}")
        field = _field(model, name)
        parts.append(f"{table}{_quoted(connection, field)} {op} %s")
        fields.append(field)
    return " AND ".join(parts) or "1 = 1", fields


def _where_params(
    connection: BaseDatabaseWrapper, fields: Iterable[Field], where: Sequence[Condition]
) -> list[Any]:
    if any(value is None for _, _, value in where):
        # "col = NULL" matches nothing, where the ORM would write IS NULL.
        raise ValueError("a condition compares with None; use the ORM for IS NULL")
    return [
        field.get_db_prep_value(value, connection, prepared=False)
        for field, (_, _, value) in zip(fields, where, strict=True)
    ]


def _cached(
    connection: BaseDatabaseWrapper, key: tuple[Any, ...], build: Any
) -> tuple[str, tuple[Field, ...]]:
    full_key = (connection.vendor, *key)
    found = _SQL.get(full_key)
    if found is None:
        found = _SQL[full_key] = build()
    return found


# --- reading ---------------------------------------------------------------------
def select_rows(
    model: type[Model],
    columns: Sequence[str],
    where: Sequence[Condition],
    *,
    order_by: Sequence[str] = (),
    limit: int | None = None,
) -> list[tuple[Any, ...]]:
    """Rows of ``columns`` (converted as the ORM would) matching ``where``.

    ``order_by`` names fields, a leading "-" for descending."""
    connection = _db()
    key = ("select", model, tuple(columns), _shape(where), tuple(order_by), limit)

    def build() -> tuple[str, tuple[Field, ...]]:
        quote = connection.ops.quote_name
        selected = tuple(_field(model, name) for name in columns)
        condition, where_fields = _where(connection, model, where)
        sql = (
            f"SELECT {', '.join(_quoted(connection, f) for f in selected)} "  # noqa: S608 - names come from the model
            f"FROM {quote(model._meta.db_table)} WHERE {condition}"
        )
        if order_by:
            sql += " ORDER BY " + ", ".join(
                _order(connection, model, name) for name in order_by
            )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return sql, selected + tuple(where_fields)

    sql, fields = _cached(connection, key, build)
    selected = fields[: len(columns)]
    with connection.cursor() as cursor:
        cursor.execute(sql, _where_params(connection, fields[len(columns) :], where))
        rows = cursor.fetchall()
    return _convert(connection, model, selected, rows)


def select_one(model: type[M], where: Sequence[Condition]) -> M | None:
    """The one instance of ``model`` matching ``where`` (all concrete fields
    loaded), or None. More than one match raises ``MultipleObjectsReturned``."""
    names = [f.attname for f in model._meta.concrete_fields]
    rows = select_rows(model, names, where, limit=2)
    if not rows:
        return None
    if len(rows) > 1:
        raise model.MultipleObjectsReturned()  # type: ignore[attr-defined]  # every model has it
    return model.from_db(DEFAULT_DB_ALIAS, names, rows[0])


def select_one_joined(
    model: type[M], relation: str, where: Sequence[Condition]
) -> M | None:
    """As ``select_one``, with the required forward relation ``relation`` (a
    non-null foreign key or one-to-one) loaded by the same statement, as
    ``select_related(relation)`` would: one read instead of two."""
    connection = _db()
    link = _field(model, relation)
    if not (link.many_to_one or link.one_to_one) or link.null:
        raise ValueError(f"{model._meta.label}.{relation} is not a required relation")
    related = cast(type[Model], link.related_model)
    if related is model:
        raise ValueError(f"{model._meta.label}.{relation} joins its own table")
    key = ("joined", model, relation, _shape(where))

    def build() -> tuple[str, tuple[Field, ...]]:
        quote = connection.ops.quote_name
        own, other = quote(model._meta.db_table), quote(related._meta.db_table)
        fields = (*model._meta.concrete_fields, *related._meta.concrete_fields)
        columns = [
            f"{own}.{_quoted(connection, f)}" for f in model._meta.concrete_fields
        ]
        columns += [
            f"{other}.{_quoted(connection, f)}" for f in related._meta.concrete_fields
        ]
        condition, where_fields = _where(connection, model, where, table=f"{own}.")
        target = _quoted(connection, cast(Field, cast(Any, link).target_field))
        sql = (
            f"SELECT {', '.join(columns)} FROM {own} "  # noqa: S608 - names come from the models
            f"INNER JOIN {other} ON {own}.{_quoted(connection, link)} = {other}.{target} "
            f"WHERE {condition} LIMIT 2"
        )
        return sql, (*fields, *where_fields)

    sql, fields = _cached(connection, key, build)
    split = len(model._meta.concrete_fields)
    width = split + len(related._meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(sql, _where_params(connection, fields[width:], where))
        rows = cursor.fetchall()
    if not rows:
        return None
    if len(rows) > 1:
        raise model.MultipleObjectsReturned()  # type: ignore[attr-defined]  # every model has it
    row = rows[0]
    instance = _instance(connection, model, fields[:split], row[:split])
    setattr(
        instance,
        relation,
        _instance(connection, related, fields[split:width], row[split:]),
    )
    return instance


def _instance(
    connection: BaseDatabaseWrapper,
    model: type[M],
    fields: Sequence[Field],
    row: tuple[Any, ...],
) -> M:
    (values,) = _convert(connection, model, tuple(fields), [row])
    return model.from_db(connection.alias, [f.attname for f in fields], values)


def _shape(where: Sequence[Condition]) -> tuple[tuple[str, str], ...]:
    return tuple((name, op) for name, op, _ in where)


def _order(connection: BaseDatabaseWrapper, model: type[Model], name: str) -> str:
    field = _field(model, name.lstrip("-"))
    direction = " DESC" if name.startswith("-") else ""
    return f"{_quoted(connection, field)}{direction}"


def _convert(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    fields: tuple[Field, ...],
    rows: list[tuple[Any, ...]],
) -> list[tuple[Any, ...]]:
    cache = connection.__dict__.setdefault(_CONVERTERS, {})
    key = (model, fields)
    plan = cache.get(key)
    if plan is None:
        plan = []
        for field in fields:
            col = field.get_col(model._meta.db_table)
            found = connection.ops.get_db_converters(col) + col.get_db_converters(
                connection
            )
            plan.append((col, tuple(found)))
        cache[key] = plan
    if not any(converters for _, converters in plan):
        return rows
    converted = []
    for row in rows:
        values = []
        for value, (col, converters) in zip(row, plan, strict=True):
            for convert in converters:
                value = convert(value, col, connection)
            values.append(value)
        converted.append(tuple(values))
    return converted


# --- writing ---------------------------------------------------------------------
def insert(instance: M) -> M:
    """INSERT a new ``instance`` (all concrete fields but an auto primary key) and
    set its primary key, as ``save(force_insert=True)`` would."""
    connection = _db()
    model = type(instance)
    if pre_save.has_listeners(model) or post_save.has_listeners(model):
        instance.save(force_insert=True)
        return instance
    meta = model._meta
    auto_pk = meta.auto_field is not None and instance.pk is None

    def build() -> tuple[str, tuple[Field, ...]]:
        quote = connection.ops.quote_name
        fields = tuple(
            f for f in meta.concrete_fields if not (auto_pk and f.primary_key)
        )
        sql = (
            f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608 - names come from the model
            f"({', '.join(_quoted(connection, f) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))})"
        )
        if auto_pk and connection.features.can_return_columns_from_insert:
            sql += f" RETURNING {_quoted(connection, meta.pk)}"
        return sql, fields

    sql, fields = _cached(connection, ("insert", model, auto_pk), build)
    params = [
        f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if auto_pk:
            if connection.features.can_return_columns_from_insert:
                new_pk = cursor.fetchone()[0]
            else:
                new_pk = connection.ops.last_insert_id(cursor, meta.db_table, "id")
            setattr(instance, meta.pk.attname, new_pk)
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def update(
    model: type[Model], values: dict[str, Any], where: Sequence[Condition]
) -> int:
    """UPDATE ``values`` (field name → value) on the rows matching ``where``;
    returns the number of rows changed."""
    connection = _db()
    names = tuple(values)
    key = ("update", model, names, _shape(where))

    def build() -> tuple[str, tuple[Field, ...]]:
        quote = connection.ops.quote_name
        fields = tuple(_field(model, name) for name in names)
        condition, where_fields = _where(connection, model, where)
        assignments = ", ".join(f"{_quoted(connection, f)} = %s" for f in fields)
        sql = (
            f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {condition}"  # noqa: S608 - names come from the model
        )
        return sql, fields + tuple(where_fields)

    sql, fields = _cached(connection, key, build)
    params = [
        f.get_db_prep_save(values[name], connection)
        for f, name in zip(fields[: len(names)], names, strict=True)
    ]
    params += _where_params(connection, fields[len(names) :], where)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)
