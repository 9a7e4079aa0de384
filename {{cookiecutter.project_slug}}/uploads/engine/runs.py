"""
The received bytes of an upload, as runs in the database (models.ReceivedRange).

A run is a row [start, end); runs are disjoint and never touch, so "are bytes
[s, e) here", "does anything overlap them" and "where do the bytes from 0
end" are each answered by one index seek, read with the upload's progress in
one statement (around()), and a file sent in order is one row.

add() places a piece's bytes, after recording.py's counter UPDATE in the same
transaction. That UPDATE holds the upload's row until the commit, so the
recordings of one upload come one at a time and each sees the runs as the one
before left them: the neighbours a piece merges with are exactly the ones
there, and runs never end up touching. What the chunk read under its
byte-range lock is a hint worth trusting one way only: a run that ended at its
start, or started at its end, still does (nobody else may add the piece's
bytes, so nobody can take either away; joining keeps the left run's start and
the right run's end), but one may have appeared since. So the write is chosen
by the hint and its RETURNING tells whether a neighbour appeared: one
statement for a piece that extends or starts a run, two when it fills a gap.
"""

from dataclasses import dataclass

from . import statements


@dataclass(frozen=True)
class Around:
    """What the runs held about bytes [start, end) when the progress was read."""

    start: int
    end: int
    # (start, end) of the first run that ends after `start`, or None.
    next_start: int | None
    next_end: int | None
    # The start of the run that ends at `start`; the end of the run that starts at `end`.
    left_start: int | None
    right_end: int | None
    # Where the run from byte 0 ends: 0 if there is none.
    from_zero: int

    def contains(self):
        """Every byte of [start, end) is received (an empty range always is)."""
        if self.start >= self.end:
            return True
        return (
            self.next_start is not None
            and self.next_start <= self.start <= self.end <= self.next_end
        )

    def overlaps(self):
        """Some byte of [start, end) is received."""
        return self.start < self.end and self.next_start is not None and self.next_start < self.end

    def from_zero_after(self):
        """Where the run from byte 0 ends once [start, end) is added, as far as
        this read could tell (a neighbour recorded since may take it further)."""
        if self.start != self.from_zero:
            return self.from_zero
        return self.right_end if self.right_end is not None else self.end

    def completes(self, first, last):
        """
        Whether bytes [first, last) are all received once [start, end) is
        (S3 staging: does this piece complete a part?). The bytes of
        [first, last) outside the piece are in the runs it touches, if any.
        """
        before = self.start <= first or (self.left_start is not None and self.left_start <= first)
        after = self.end >= last or (self.right_end is not None and self.right_end >= last)
        return before and after


def around(upload_id, start, end):
    """(status, size, received_bytes, hashed_bytes, hash_state, Around) of the
    upload now; Upload.DoesNotExist if gone."""
    status, size, received, hashed, state, found = statements.progress(upload_id, start, end)
    next_start, next_end, left, right, zero = found
    around = Around(start, end, next_start, next_end, left, right, zero or 0)
    return status, size, received, hashed, state, around


def add(upload_id, start, end, hint=None):
    """
    Merge [start, end) into the runs. The caller holds the byte-range lock on
    it, has checked it overlaps no run, and has just counted it (recording.py),
    in this transaction. hint: the Around read under that lock, if for these bytes.
    """
    if start >= end:
        return
    left = hint is not None and hint.start == start and hint.left_start is not None
    right = hint is not None and hint.end == end and hint.right_end is not None
    if left and right:
        # A gap filled: the run on the right goes into the one on the left.
        statements.join(upload_id, start, end)
        return
    if left:
        _, after = statements.extend_end(upload_id, start, end)
        joins = [end] if after is not None else []
    elif right:
        _, before = statements.extend_start(upload_id, start, end)
        joins = [start] if before is not None else []
    else:
        before, after = statements.insert_run(upload_id, start, end)
        joins = [at for at, there in ((start, before), (end, after)) if there is not None]
    for at in joins:
        statements.join(upload_id, at, at)
