"""Hypothesis fuzz of the samplers: any data, labels and parameters give a result or a
ValueError / TypeError, never a crash, never a modified input. Run by tests/test_fuzz.py."""

import os
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from smote_ann import ADASYN, SMOTE, BorderlineSMOTE, FaissNN, LowRecallWarning


@st.composite
def problem(draw):
    n = draw(st.integers(2, 80))
    d = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int32, np.uint8]))
    elements = (st.floats(-1e6, 1e6, width=32) if np.dtype(dtype).kind == "f" else None)
    X = draw(arrays(dtype, (n, d), elements=elements))
    labels = draw(st.sampled_from([[0, 1], [0, 1, 2], ["a", "b"], [True, False]]))
    y = np.array(draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n)))
    return X, y


neighbors = st.one_of(
    st.integers(1, 6),
    st.builds(lambda k, t: FaissNN(k, index_type=t), st.integers(1, 7),
              st.sampled_from(["flat", "ivf", "hnsw"])),
)
strategies = st.one_of(st.sampled_from(["auto", "minority", "not majority", "all"]),
                       st.floats(0.05, 1.0))


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
          derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=problem(), kind=st.sampled_from(["smote", "b1", "b2", "adasyn"]), nn=neighbors,
       strategy=strategies, chunk=st.integers(1, 50))
def fuzz(data, kind, nn, strategy, chunk):
    X, y = data
    before_X, before_y = X.copy(), y.copy()
    common = dict(sampling_strategy=strategy, random_state=0, chunk_size=chunk)
    sampler = {
        "smote": lambda: SMOTE(k_neighbors=nn, **common),
        "b1": lambda: BorderlineSMOTE(k_neighbors=nn, m_neighbors=nn, **common),
        "b2": lambda: BorderlineSMOTE(k_neighbors=nn, m_neighbors=nn, kind="borderline-2", **common),
        "adasyn": lambda: ADASYN(n_neighbors=nn, **common),
    }[kind]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowRecallWarning)
        warnings.simplefilter("ignore", UserWarning)  # BorderlineSMOTE's "no sample in danger"
        try:
            X_res, y_res = sampler.fit_resample(X, y)
            assert len(X_res) == len(y_res) >= len(X)
            np.testing.assert_array_equal(X_res[: len(X)], X.astype(X_res.dtype))
        except (ValueError, TypeError):
            pass
    np.testing.assert_array_equal(X, before_X)
    np.testing.assert_array_equal(y, before_y)


if __name__ == "__main__":
    fuzz()
    print("ok")
