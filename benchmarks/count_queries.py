"""
Count the database queries each flow.js chunk costs, inside a generated site.

upload_throughput.py copies this script into its temp dir and runs it with the
generated site as the working directory, so the site itself is never changed
for the benchmark. It logs a fresh user in with django.test.Client, sends a
small file as flow.js would (in order, one chunk at a time, each preceded by
flow.js's test GET), with both of flow.js's methods, and captures the queries
of every request, and the CPU time this process spent on it: with chunks this
small, that is the fixed cost of a request (middleware, session, ORM), the
part that does not grow with the chunk. It prints one JSON document on stdout.

Queries are split by what they are for, read from their SQL:
- auth: the session and the user, which every authenticated request loads;
- tx: transaction control Django issues itself (SQLite's BEGIN, savepoints);
- engine: everything else, i.e. what the uploads app asks for.
"""

import argparse
import json
import os
import sys
import time

AUTH_TABLES = ('"django_session"', '"auth_user"')
TX_PREFIXES = ("BEGIN", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK", "COMMIT")


def main():
    args = parse_args()
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    # Lets the test client's "testserver" host past ALLOWED_HOSTS.
    setup_test_environment()
    client = logged_in_client()
    size = args.chunk * args.chunks + args.chunk // 3  # the last chunk takes a remainder
    report = {
        method: send_file(client, method, size, args.chunk) for method in ("octet", "multipart")
    }
    print(json.dumps(report))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunk", type=int, default=64 * 1024, help="chunk size in bytes")
    parser.add_argument("--chunks", type=int, default=12, help="number of chunks")
    return parser.parse_args()


def logged_in_client():
    import secrets

    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user(f"queries-{secrets.token_hex(4)}")
    client = Client()
    client.force_login(user)
    return client


def send_file(client, method, size, chunk_size):
    """flow.js's requests for one file; the queries of each, per chunk."""
    count = max(size // chunk_size, 1)
    identifier = f"{size}-queries{method}"
    payload = os.urandom(size)
    chunks = []
    for number in range(1, count + 1):
        start = (number - 1) * chunk_size
        end = size if number == count else start + chunk_size
        params = {
            "flowChunkNumber": number,
            "flowChunkSize": chunk_size,
            "flowCurrentChunkSize": end - start,
            "flowTotalSize": size,
            "flowIdentifier": identifier,
            "flowFilename": f"queries-{method}.bin",
            "flowRelativePath": f"queries-{method}.bin",
            "flowTotalChunks": count,
        }
        test = captured(204, client.get, "/uploads/flow/", params)
        post = captured(200, post_chunk, client, method, params, payload[start:end])
        chunks.append({"number": number, "test": test, "post": post})
    return chunks


def post_chunk(client, method, params, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    if method == "octet":
        return client.post(
            "/uploads/flow/",
            data,
            content_type="application/octet-stream",
            query_params=params,
        )
    form = dict(params, file=SimpleUploadedFile(params["flowFilename"], data))
    return client.post("/uploads/flow/", form)


def captured(expect, send, *args):
    """send(*args) with its queries captured; it must answer `expect`."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        started = time.process_time()
        response = send(*args)
        cpu = time.process_time() - started
    if response.status_code != expect:
        raise SystemExit(
            f"expected {expect}, got {response.status_code}: {response.content[:300]!r}"
        )
    queries = [query["sql"] for query in context.captured_queries]
    kinds = [kind_of(sql) for sql in queries]
    return {
        "total": len(queries),
        "auth": kinds.count("auth"),
        "tx": kinds.count("tx"),
        "engine": kinds.count("engine"),
        "status": response.json().get("status") if response.status_code == 200 else None,
        "cpu_ms": cpu * 1000,
        "sql": queries,
    }


def kind_of(sql):
    if sql.lstrip().upper().startswith(TX_PREFIXES):
        return "tx"
    if any(table in sql for table in AUTH_TABLES):
        return "auth"
    return "engine"


if __name__ == "__main__":
    main()
