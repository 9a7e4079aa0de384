"""
Sets of received bytes, kept as sorted, disjoint, half-open [start, end) pairs.

Stored as JSON on the Upload row. Adjacent ranges are merged, so an upload that
arrives in order is always a single pair however many chunks it has.
"""

from bisect import bisect_right


def add(ranges, start, end):
    """Return `ranges` with [start, end) added and neighbours merged."""
    if start >= end:
        return [list(r) for r in ranges]
    merged = []
    placed = False
    for s, e in ranges:
        if e < start:
            merged.append([s, e])
        elif s > end:
            if not placed:
                merged.append([start, end])
                placed = True
            merged.append([s, e])
        else:
            start, end = min(s, start), max(e, end)
    if not placed:
        merged.append([start, end])
    return merged


def contains(ranges, start, end):
    """True when every byte of [start, end) is in `ranges`."""
    if start >= end:
        return True
    i = bisect_right([s for s, _ in ranges], start) - 1
    return i >= 0 and ranges[i][1] >= end


def overlaps(ranges, start, end):
    """True when some byte of [start, end) is in `ranges` (an empty range has none)."""
    return start < end and any(s < end and start < e for s, e in ranges)


def total(ranges):
    return sum(e - s for s, e in ranges)
