"""
The statements every chunk runs, written once.

A chunk finds its upload, reads the upload's progress (status, received
ranges, size) under the byte-range lock and again before recording, and
records its range with a conditional UPDATE (recording.py says why): four
statements, of three kinds. The ORM
builds and compiles each of these anew on every call, which for one-row
statements costs ten times what the database does (0.2 to 0.6 ms of Python
against 0.02 ms in SQLite), on every chunk of every upload.

So their SQL is written once per database alias from the model's own table
and column names, quoted by the backend, and values go through the model's
fields both ways (get_db_prep_value / from_db_value): UUIDs, datetimes and
JSON are stored exactly as the ORM stores them, on every backend Django
supports. Everything else in the app uses the ORM.
"""

import functools

from django.db import connections, router

from ..models import Upload

_meta = Upload._meta


def active_upload(owner_id, protocol, client_id):
    """The owner's unfinished upload with this client identifier, or None."""
    alias = router.db_for_read(Upload)
    sql, statuses = _active_upload_sql(alias)
    found = Upload.objects.using(alias).raw(sql, [owner_id, protocol, client_id, *statuses])
    return next(iter(found), None)


def progress(upload_id):
    """(status, received ranges, size, hashed bytes, hash state) of an upload as stored now."""
    alias = router.db_for_read(Upload)
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(_progress_sql(alias), [_meta.pk.get_db_prep_value(upload_id, connection)])
        row = cursor.fetchone()
    if row is None:
        raise Upload.DoesNotExist(f"no upload {upload_id}")
    status, received_ranges, size, hashed_bytes, hash_state = row
    ranges_field = _meta.get_field("received_ranges")
    received_ranges = ranges_field.from_db_value(received_ranges, None, connection)
    return status, received_ranges, size, hashed_bytes, hash_state


def record(upload_id, *, status, received_bytes, size, values, hash_advance=None):
    """
    UPDATE the upload with `values` (field name -> value) if it still has this
    status, byte count and size; True if it did.

    hash_advance: (from, to, state): in the same UPDATE, the hash state of the
    first `to` bytes replaces the saved one if that is still of `from` bytes
    (engine/hashing.py); both CASEs see the row as it was.
    """
    alias = router.db_for_write(Upload)
    connection = connections[alias]
    names = tuple(values)
    sql = _record_sql(alias, names, size is None, hash_advance is not None)
    params = [_meta.get_field(name).get_db_prep_save(values[name], connection) for name in names]
    if hash_advance is not None:
        start, end, state = hash_advance
        state = _meta.get_field("hash_state").get_db_prep_save(state, connection)
        params += [start, end, start, state]
    params += [_meta.pk.get_db_prep_value(upload_id, connection), status, received_bytes]
    if size is not None:
        params.append(size)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


# Only names from the model, quoted by the backend, go into the SQL text; every
# value is a parameter.


def _quoted(alias):
    quote = connections[alias].ops.quote_name
    return quote(_meta.db_table), lambda name: quote(_meta.get_field(name).column)


@functools.cache
def _active_upload_sql(alias):
    # At most one row matches: the constraint uploads_one_active_upload_per_client_id.
    table, column = _quoted(alias)
    statuses = tuple(Upload.ACTIVE)
    matches = " AND ".join(f"{column(name)} = %s" for name in ("owner", "protocol", "client_id"))
    among = f"{column('status')} IN ({', '.join(['%s'] * len(statuses))})"
    return f"SELECT * FROM {table} WHERE {matches} AND {among} LIMIT 1", statuses  # noqa: S608


@functools.cache
def _progress_sql(alias):
    table, column = _quoted(alias)
    names = ("status", "received_ranges", "size", "hashed_bytes", "hash_state")
    fields = ", ".join(column(name) for name in names)
    return f"SELECT {fields} FROM {table} WHERE {column('id')} = %s"  # noqa: S608


@functools.cache
def _record_sql(alias, names, size_is_null, hashes):
    table, column = _quoted(alias)
    assignments = ", ".join(f"{column(name)} = %s" for name in names)
    if hashes:
        hashed, state = column("hashed_bytes"), column("hash_state")
        assignments += (
            f", {hashed} = CASE WHEN {hashed} = %s THEN %s ELSE {hashed} END"
            f", {state} = CASE WHEN {hashed} = %s THEN %s ELSE {state} END"
        )
    conditions = [f"{column(name)} = %s" for name in ("id", "status", "received_bytes")]
    conditions.append(f"{column('size')} IS NULL" if size_is_null else f"{column('size')} = %s")
    return f"UPDATE {table} SET {assignments} WHERE {' AND '.join(conditions)}"  # noqa: S608
