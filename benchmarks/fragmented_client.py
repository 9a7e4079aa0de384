"""
The client side of fragmented_upload.py, run inside a generated site (its
working directory): logs a fresh user in with django.test.Client and sends
one file in 1-byte flow.js chunks, every other byte first, then the gaps,
timing every POST. Prints one JSON document: {"fragments": [seconds...],
"gaps": [seconds...], "status": the last answer's status}.
"""

import argparse
import json
import os
import secrets
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=3000)
    args = parser.parse_args()
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # lets "testserver" past ALLOWED_HOSTS
    client = Client()
    client.force_login(get_user_model().objects.create_user(f"frag-{secrets.token_hex(4)}"))
    size = 2 * args.chunks
    data = os.urandom(size)
    numbers = {"fragments": range(1, size + 1, 2), "gaps": range(2, size + 1, 2)}
    times, status = {}, None
    for phase, chunk_numbers in numbers.items():
        times[phase] = []
        for number in chunk_numbers:
            params = {
                "flowChunkNumber": number,
                "flowChunkSize": 1,
                "flowCurrentChunkSize": 1,
                "flowTotalSize": size,
                "flowIdentifier": f"{size}-fragmented",
                "flowFilename": "fragmented.bin",
                "flowRelativePath": "fragmented.bin",
                "flowTotalChunks": size,
            }
            started = time.perf_counter()
            response = client.post(
                "/uploads/flow/",
                data[number - 1 : number],
                content_type="application/octet-stream",
                query_params=params,
            )
            times[phase].append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(
                    f"chunk {number}: {response.status_code} {response.content[:300]!r}"
                )
            status = response.json()["status"]
    print(json.dumps({**times, "status": status}))


if __name__ == "__main__":
    main()
