"""The file every row uploads, and the checks that what was stored is that file."""

import hashlib
import os
import random

from sizes import MIB

BLOCK_SIZE = MIB


def sync_disks():
    """Flush dirty pages between runs, so that one run's writeback never slows the next."""
    os.sync()


def write_source(path, size):
    """
    `size` random-ish bytes, written in 1 MiB blocks (never held whole), and
    their sha256. Each block is one random block rotated by its index, so no
    two blocks are equal, at memcpy speed rather than a PRNG's.
    """
    # Seeded, so one size is always the same file; nothing here is a secret.
    base = random.Random(size).randbytes(BLOCK_SIZE)  # noqa: S311
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for index, start in enumerate(range(0, size, BLOCK_SIZE)):
            shift = (index * 7919) % BLOCK_SIZE
            block = (index.to_bytes(8, "little") + base[shift:] + base[:shift])[
                : min(BLOCK_SIZE, size - start)
            ]
            digest.update(block)
            out.write(block)
    sync_disks()
    return digest.hexdigest()


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()
