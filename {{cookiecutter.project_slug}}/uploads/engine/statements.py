"""
The statements every chunk runs, written once.

A chunk finds its upload, reads its progress under the byte-range lock
(status, size, the byte counter, the saved hash, and what the received runs
hold around the chunk's bytes, each an index seek), and records its bytes: one UPDATE of the
counter and one write of a run, in a transaction (recording.py, runs.py say
why). Four statements for a chunk that extends a run. The ORM builds and
compiles each of these anew on every call, which for one-row statements costs
ten times what the database does (0.2 to 0.6 ms of Python against 0.02 ms in
SQLite), on every chunk of every upload.

So their SQL is written once per database alias from the models' own table
and column names, quoted by the backend, and values go through the models'
fields both ways (get_db_prep_value / from_db_value): UUIDs, datetimes and
bytes are stored exactly as the ORM stores them. RETURNING (SQLite 3.35,
PostgreSQL) saves a read after a write; the site supports only those two.
Everything else in the app uses the ORM.
"""

import functools

from django.db import connections, router

from ..models import ReceivedRange, Upload

_meta = Upload._meta
_runs = ReceivedRange._meta


def active_upload(owner_id, protocol, client_id):
    """The owner's unfinished upload with this client identifier, or None."""
    alias = router.db_for_read(Upload)
    sql, statuses = _active_upload_sql(alias)
    found = Upload.objects.using(alias).raw(sql, [owner_id, protocol, client_id, *statuses])
    return next(iter(found), None)


def progress(upload_id, start, end):
    """
    (status, size, received_bytes, hashed_bytes, hash_state, around) of an
    upload as stored now, where
    `around` is what the runs say about bytes [start, end): (start, end) of
    the first run ending after `start`, the start of the run ending at
    `start`, the end of the run starting at `end`, and where the run starting
    at 0 ends; None for each run there is not.
    """
    alias = router.db_for_read(Upload)
    connection = connections[alias]
    pk = _pk(upload_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(_progress_sql(alias), [pk, start, pk, start, pk, start, pk, end, pk, pk])
        row = cursor.fetchone()
    if row is None:
        raise Upload.DoesNotExist(f"no upload {upload_id}")
    status, size, received_bytes, hashed_bytes, hash_state, *around = row
    return status, size, received_bytes, hashed_bytes, hash_state, tuple(around)


def count(upload_id, length, *, updated, expires, size=None, finish=None, hash_advance=None):
    """
    Add `length` to the upload's byte counter, if it is still uploading (and
    has this size, or none yet, when `size` is given); None if it is not,
    else its (status, received_bytes, size, hashed_bytes) after.

    The counter is incremented by the database (received_bytes = received_bytes
    + length), so chunks recorded at once each add theirs. size: a deferred
    size, set if the upload has none. finish: the lease (finishing_until) of
    the move to `processing`, made by this same UPDATE when the counter
    reaches the size; None holds the upload `uploading`. hash_advance:
    (from_offset, to_offset, state) moves hashed_bytes and hash_state on if
    hashed_bytes is still from_offset (SET expressions all see the old row).
    """
    alias = router.db_for_write(Upload)
    connection = connections[alias]
    sql = _count_sql(alias, size is not None, finish is not None, hash_advance is not None)
    params = [length, _save("updated", updated, connection), _save("expires", expires, connection)]
    if size is not None:
        params.append(size)
    if finish is not None:
        condition = [length, size]  # received_bytes + length = COALESCE(size, given size)
        params += [*condition, Upload.Status.PROCESSING]
        params += [*condition, _save("finishing_until", finish, connection)]
    if hash_advance is not None:
        start, stop, state = hash_advance
        params += [start, stop, start, _save("hash_state", state, connection)]
    params += [_pk(upload_id, connection), Upload.Status.UPLOADING]
    if size is not None:
        params.append(size)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return rows[0] if rows else None


# The runs of received bytes (runs.py decides which of these a chunk needs).


def extend_end(upload_id, start, end):
    """The run ending at `start` now ends at `end`: (True, end of the run
    starting at `end` or None), or (False, None) if no run ended at `start`."""
    rows = _run_statement("extend_end", [end, *_at(upload_id, start), *_at(upload_id, end)])
    return (True, rows[0][0]) if rows else (False, None)


def extend_start(upload_id, start, end):
    """The run starting at `end` now starts at `start`: (True, start of the run
    ending at `start` or None), or (False, None) if no run started at `end`."""
    rows = _run_statement("extend_start", [start, *_at(upload_id, end), *_at(upload_id, start)])
    return (True, rows[0][0]) if rows else (False, None)


def insert_run(upload_id, start, end):
    """A new run [start, end): (start of the run ending at `start`, end of the
    run starting at `end`), None for each there is not."""
    alias = router.db_for_write(ReceivedRange)
    pk = _pk(upload_id, connections[alias])
    (row,) = _run_statement("insert", [pk, start, end, pk, start, pk, end])
    return row


def join(upload_id, left_end, right_start):
    """The run ending at `left_end` takes in the one starting at `right_start`
    and the bytes between (none, or a piece's)."""
    rows = _run_statement("delete_from", _at(upload_id, right_start))
    if rows:
        _run_statement("set_end", [rows[0][0], *_at(upload_id, left_end)])


def _run_statement(name, params):
    alias = router.db_for_write(ReceivedRange)
    with connections[alias].cursor() as cursor:
        cursor.execute(_runs_sql(alias)[name], params)
        return cursor.fetchall() if cursor.description else []


def _at(upload_id, offset):
    return [_pk(upload_id, connections[router.db_for_write(ReceivedRange)]), offset]


def _pk(upload_id, connection):
    return _meta.pk.get_db_prep_value(upload_id, connection)


def _save(name, value, connection):
    return _meta.get_field(name).get_db_prep_save(value, connection)


# Only names from the models, quoted by the backend, go into the SQL text;
# every value is a parameter.


def _quoted(alias, meta=_meta):
    quote = connections[alias].ops.quote_name
    return quote(meta.db_table), lambda name: quote(meta.get_field(name).column)


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
    # Each subquery is one seek in uploads_range_start or uploads_range_end:
    # runs are disjoint, so in the order of their ends they are in the order
    # of their starts, and the first run ending after `start` is the only one
    # that can hold it or the first to overlap bytes from it.
    table, column = _quoted(alias)
    runs, run = _quoted(alias, _runs)
    upload, start, end = run("upload"), run("start"), run("end")
    first_after = f"FROM {runs} WHERE {upload} = %s AND {end} > %s ORDER BY {end} LIMIT 1"
    around = [
        f"(SELECT {start} {first_after})",
        f"(SELECT {end} {first_after})",
        f"(SELECT {start} FROM {runs} WHERE {upload} = %s AND {end} = %s)",  # noqa: S608
        f"(SELECT {end} FROM {runs} WHERE {upload} = %s AND {start} = %s)",  # noqa: S608
        f"(SELECT {end} FROM {runs} WHERE {upload} = %s AND {start} = 0)",  # noqa: S608
    ]
    names = ("status", "size", "received_bytes", "hashed_bytes", "hash_state")
    fields = [column(name) for name in names]
    return f"SELECT {', '.join(fields + around)} FROM {table} WHERE {column('id')} = %s"  # noqa: S608


@functools.cache
def _count_sql(alias, sets_size, finishes, advances_hash):
    table, column = _quoted(alias)
    received, size = column("received_bytes"), column("size")
    assignments = [
        f"{received} = {received} + %s",
        f"{column('updated')} = %s",
        f"{column('expires')} = %s",
    ]
    if sets_size:
        assignments.append(f"{size} = COALESCE({size}, %s)")
    if finishes:
        whole = f"{received} + %s = COALESCE({size}, %s)"
        for name in ("status", "finishing_until"):
            assignments.append(
                f"{column(name)} = CASE WHEN {whole} THEN %s ELSE {column(name)} END"
            )
    if advances_hash:
        hashed = column("hashed_bytes")
        for name in ("hashed_bytes", "hash_state"):
            assignments.append(
                f"{column(name)} = CASE WHEN {hashed} = %s THEN %s ELSE {column(name)} END"
            )
    conditions = [f"{column('id')} = %s", f"{column('status')} = %s"]
    if sets_size:
        conditions.append(f"({size} IS NULL OR {size} = %s)")
    returned = ", ".join(
        column(name) for name in ("status", "received_bytes", "size", "hashed_bytes")
    )
    return (
        f"UPDATE {table} SET {', '.join(assignments)} "  # noqa: S608
        f"WHERE {' AND '.join(conditions)} RETURNING {returned}"
    )


@functools.cache
def _runs_sql(alias):
    runs, run = _quoted(alias, _runs)
    upload, start, end = run("upload"), run("start"), run("end")
    # The subqueries in RETURNING look at the neighbours the write may now touch.
    ending_at = f"(SELECT r.{start} FROM {runs} r WHERE r.{upload} = %s AND r.{end} = %s)"  # noqa: S608
    starting_at = f"(SELECT r.{end} FROM {runs} r WHERE r.{upload} = %s AND r.{start} = %s)"  # noqa: S608
    where_end, where_start = (
        f"WHERE {upload} = %s AND {end} = %s",
        f"WHERE {upload} = %s AND {start} = %s",
    )
    return {
        "extend_end": f"UPDATE {runs} SET {end} = %s {where_end} RETURNING {starting_at}",  # noqa: S608
        "extend_start": f"UPDATE {runs} SET {start} = %s {where_start} RETURNING {ending_at}",  # noqa: S608
        "insert": f"INSERT INTO {runs} ({upload}, {start}, {end}) VALUES (%s, %s, %s) "  # noqa: S608
        f"RETURNING {ending_at}, {starting_at}",
        "delete_from": f"DELETE FROM {runs} {where_start} RETURNING {end}",  # noqa: S608
        "set_end": f"UPDATE {runs} SET {end} = %s {where_end}",  # noqa: S608
    }
