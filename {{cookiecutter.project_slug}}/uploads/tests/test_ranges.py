from hypothesis import given
from hypothesis import strategies as st

from uploads import ranges

spans = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 40)), max_size=30)


def as_set(rs):
    return {i for s, e in rs for i in range(s, e)}


@given(spans)
def test_adding_in_any_order_gives_the_union_merged(items):
    rs, expected = [], set()
    for start, length in items:
        rs = ranges.add(rs, start, start + length)
        expected |= set(range(start, start + length))
    assert as_set(rs) == expected
    assert ranges.total(rs) == len(expected)
    # Sorted, disjoint and not touching: every gap between pairs is real.
    for (_, e1), (s2, _) in zip(rs, rs[1:], strict=False):
        assert e1 < s2


@given(spans, st.integers(0, 250), st.integers(0, 40))
def test_contains_and_overlaps_agree_with_sets(items, start, length):
    rs = []
    for s, n in items:
        rs = ranges.add(rs, s, s + n)
    wanted = set(range(start, start + length))
    assert ranges.contains(rs, start, start + length) == wanted.issubset(as_set(rs))
    assert ranges.overlaps(rs, start, start + length) == bool(wanted & as_set(rs))


def test_in_order_chunks_stay_one_pair():
    rs = []
    for i in range(1000):
        rs = ranges.add(rs, i * 10, i * 10 + 10)
    assert rs == [[0, 10000]]
