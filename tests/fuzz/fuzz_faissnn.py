"""Hypothesis fuzz of FaissNN: any factory string, shape, dtype and values give a result
or a ValueError / TypeError, never a crash, never a modified input.

Run by tests/test_fuzz.py in a subprocess (a crash fails that test, not the test run).
"""

import os
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from smote_ann import FaissNN, LowRecallWarning

TOKENS = ["IVF", "HNSW", "NSG", "PQ", "SQ", "Flat", "PCA", "PCAR", "OPQ", "RFlat", "Refine",
          "LSH", "IDMap", "L2norm", "RR", "ITQ", "np", "fs", "x", "fp16", "_", ",", "(", ")",
          "0", "1", "2", "4", "8", "16", "64", "256", "4096", "99999999"]
factory = st.one_of(
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=8).map("".join),
    st.text(max_size=40),
    st.sampled_from(["flat", "ivf", "hnsw"]),
)
dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_, np.float16])


def values(dtype):
    if np.dtype(dtype).kind == "f":
        return st.floats(allow_nan=True, allow_infinity=True, width=np.dtype(dtype).itemsize * 8)
    return None


@st.composite
def data(draw):
    dtype = draw(dtypes)
    n = draw(st.integers(1, 60))
    d = draw(st.integers(1, 6))
    return draw(arrays(dtype, (n, d), elements=values(dtype)))


OK_ERRORS = (ValueError, TypeError)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")), deadline=None,
          derandomize=True, suppress_health_check=list(HealthCheck))
@given(index_type=factory, X=data(), k=st.integers(1, 8), metric=st.sampled_from(
    ["euclidean", "sqeuclidean", "cosine"]))
def fuzz(index_type, X, k, metric):
    before = X.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowRecallWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy on inf / nan input
        try:
            nn = FaissNN(k, index_type=index_type, metric=metric, random_state=0).fit(X)
            dist, ind = nn.kneighbors(X[:5], n_neighbors=min(k, len(X)))
            assert ((ind >= 0) & (ind < len(X))).all() and np.isfinite(dist).all()
        except OK_ERRORS:
            pass
    np.testing.assert_array_equal(X, before)  # never modified


if __name__ == "__main__":
    fuzz()
    print("ok")
