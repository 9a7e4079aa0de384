"""Sizes as a person writes them on the command line, and the units the table prints."""

import argparse
import re

MB = 1_000_000  # the table's MB/s and MB are decimal
MIB = 1024 * 1024
GIB = 1024 * MIB

UNITS = {"": 1, "b": 1, "k": 1024, "m": MIB, "g": GIB, "t": 1024 * GIB}
UNITS.update({"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12})
UNITS.update({"kib": 1024, "mib": MIB, "gib": GIB, "tib": 1024 * GIB})


def parse_size(text):
    """'1GiB', '8MiB', '500MB', '1g' or plain bytes -> bytes (k/m/g alone are binary)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 1GiB, 8MiB or 500MB")
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])
