"""The min/max envelope: every column holds exactly the min and max of the instants on its stretch of
the grid, whatever the chunking, the window or the (doubling) bucket; empty columns are NaN."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypo import examples
from picodaq.plot.envelope import STAGE_ROWS, Envelope, reduce_columns


def reference(pos: np.ndarray, values: np.ndarray, start: int, bucket: int, n_columns: int):
    """Column min/max the slow way: instant by instant."""
    nch = values.shape[1]
    lo = np.full((n_columns, nch), np.nan)
    hi = np.full((n_columns, nch), np.nan)
    for p, v in zip(pos, values):
        c = (p - start) // bucket
        if 0 <= c < n_columns:
            lo[c] = np.fmin(lo[c], v)
            hi[c] = np.fmax(hi[c], v)
    return lo, hi


def test_reduce_columns_cuts_where_the_grid_says_not_where_the_chunk_starts():
    counts = np.arange(10, dtype=np.int32)[:, None] * np.array([1, -1])
    c0, lo, hi = reduce_columns(counts, 7, 4)  # positions 7..16: columns 1 (7), 2 (8-11), 3 (12-15), 4 (16)
    assert c0 == 1
    assert lo[:, 0].tolist() == [0, 1, 5, 9] and hi[:, 0].tolist() == [0, 4, 8, 9]
    assert lo[:, 1].tolist() == [0, -4, -8, -9] and hi[:, 1].tolist() == [0, -1, -5, -9]


def test_a_one_instant_spike_keeps_its_height_in_a_column_of_a_million():
    x = np.zeros((1_000_000, 1), dtype=np.int32)
    x[654_321] = 12345
    x[12] = -7
    env = Envelope(1, end=len(x), columns=1)
    env.add(0, x)
    pos, lo, hi = env.columns()
    assert pos.tolist() == [0] and lo[0, 0] == -7 and hi[0, 0] == 12345


def test_a_known_window_chooses_its_bucket_and_leaves_gaps_empty():
    env = Envelope(2, start=100, end=1100, columns=100)
    assert env.bucket == 10
    v = np.stack([np.arange(1000), -np.arange(1000)], axis=1)
    env.add(0, v[:300])  # 0..299: only 100..299 lies in the window
    env.add(500, v[500:])  # 300..499 never arrived
    pos, lo, hi = env.columns()
    assert len(pos) == 100 and pos[0] == 100 and pos[-1] == 1090
    assert np.isnan(lo[20:40]).all() and np.isnan(hi[20:40]).all()  # the gap: no data, not zero
    assert lo[0].tolist() == [100, -109] and hi[0].tolist() == [109, -100]
    assert lo[40].tolist() == [500, -509] and hi[89].tolist() == [999, -990]
    assert np.isnan(lo[90:]).all()  # the window runs to 1100, the data ended at 999
    assert env.instants == 200 + 500


def test_an_unknown_length_doubles_the_bucket_and_stays_within_twice_the_columns():
    env = Envelope(1, columns=50)
    rng = np.random.default_rng(1)
    v = rng.integers(-1000, 1000, size=(123_457, 1))
    for k in range(0, len(v), 997):
        env.add(k, v[k : k + 997])
    pos, lo, hi = env.columns()
    assert 50 <= len(pos) <= 100 and env.bucket & (env.bucket - 1) == 0  # a power of two
    rlo, rhi = reference(np.arange(len(v)), v, 0, env.bucket, len(pos))
    assert np.array_equal(lo, rlo) and np.array_equal(hi, rhi)


def test_large_chunks_skip_the_stage_and_agree_with_small_ones():
    v = np.arange(3 * STAGE_ROWS, dtype=np.int64)[:, None] % 977
    big = Envelope(1, end=len(v), columns=300)
    big.add(0, v)
    small = Envelope(1, end=len(v), columns=300)
    for k in range(0, len(v), 64):
        small.add(k, v[k : k + 64])
    for a, b in zip(big.columns(), small.columns()):
        assert np.array_equal(a, b)


def test_bad_windows_are_refused():
    with pytest.raises(ValueError):
        Envelope(1, start=5, end=5)
    with pytest.raises(ValueError):
        Envelope(1, columns=0)


@settings(max_examples=examples(30))
@given(
    data=st.data(),
    nch=st.integers(1, 3),
    start=st.integers(0, 50),
    known=st.booleans(),
    columns=st.integers(1, 40),
)
def test_any_chunking_gives_the_column_min_and_max(data, nch, start, known, columns):
    # runs of instants with gaps between them, fed in chunks of any size
    runs = data.draw(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 200)), min_size=1, max_size=6))
    pos_list = []
    p = 0
    for gap, n in runs:
        p += gap
        pos_list.append(np.arange(p, p + n))
        p += n
    pos = np.concatenate(pos_list)
    values = np.asarray(
        data.draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=len(pos) * nch, max_size=len(pos) * nch)),
        dtype=np.int64,
    ).reshape(len(pos), nch)
    end = max(p, start) + data.draw(st.integers(1, 20)) if known else None
    env = Envelope(nch, start=start, end=end, columns=columns)
    i = 0
    while i < len(pos):
        k = data.draw(st.integers(1, 50))
        # a chunk never spans a gap: contiguous positions only
        j = i + 1
        while j < len(pos) and j - i < k and pos[j] == pos[j - 1] + 1:
            j += 1
        env.add(int(pos[i]), values[i:j])
        i = j
    cpos, lo, hi = env.columns()
    assert np.array_equal(cpos, start + np.arange(len(cpos)) * env.bucket)
    rlo, rhi = reference(pos, values, start, env.bucket, len(cpos))
    assert np.array_equal(lo, rlo, equal_nan=True) and np.array_equal(hi, rhi, equal_nan=True)
    if known:
        assert len(cpos) == -(-(end - start) // env.bucket)
    else:
        assert len(cpos) <= 2 * columns
        inside = pos[pos >= start]
        assert len(cpos) == (0 if not len(inside) else (inside[-1] - start) // env.bucket + 1)
