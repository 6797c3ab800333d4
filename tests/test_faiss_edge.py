"""The FAISS edge is guarded: what would crash, exhaust memory or silently return wrong
distances inside FAISS is refused first with a ValueError naming the parameter and the fix.

Each case that crashed the process before runs in a subprocess, so that a crash fails
the test instead of ending the test run.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy import sparse
from sklearn.neighbors import NearestNeighbors

from smote_ann import SMOTE, FaissNN


@pytest.mark.parametrize(
    "index_type, match",
    [
        # a segmentation fault inside faiss.index_factory (15,000 characters and more)
        ("x" * 20000, "is 20000 characters long; FAISS's are at most 200"),
        ("IVF16," * 5000 + "Flat", "is 30004 characters long"),
        # std::bad_alloc or gigabytes allocated before any size check
        ("IVF99999999,Flat", "has 99999999 IVF lists but only 300 samples"),
        ("HNSW100000000", "asks for HNSW graphs of 100000000 links per vector"),
        ("IVF4294967296,Flat", "has the size 4294967296, larger than FAISS accepts"),
    ],
)
def test_factory_strings_that_crashed_faiss_are_refused(index_type, match):
    code = f"""
        import numpy as np
        from smote_ann import FaissNN
        X = np.random.default_rng(0).random((300, 8))
        try:
            FaissNN(3, index_type={index_type!r}).fit(X)
        except ValueError as exc:
            print(exc)
            raise SystemExit(3)
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 3, done.stderr  # a clean ValueError, not a crash (rc 139)
    assert match in done.stdout


def test_huge_nlist_and_hnsw_m_are_refused_before_any_allocation():
    code = """
        import resource
        import numpy as np
        from smote_ann import FaissNN
        X = np.random.default_rng(0).random((300, 8))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for params in ({"index_type": "ivf", "nlist": 10_000_000}, {"index_type": "hnsw", "hnsw_m": 10**8}):
            try:
                FaissNN(3, **params).fit(X)
            except ValueError as exc:
                print(type(exc).__name__, str(exc)[:60])
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print("grew_kib", grew)
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ValueError The IVF index has nlist=10000000 lists but only 300")
    assert lines[1].startswith("InvalidParameterError The 'hnsw_m' parameter of FaissNN")
    assert int(lines[2].split()[1]) < 100_000  # KiB: not the 1.7 GB it took before


@pytest.mark.parametrize(
    "index_type, match",
    [
        ("Flat\x00IVF9", r"contains '\\x00'; factory strings are letters, digits"),
        ("PCA0,Flat", "has a size of 0"),
        ("IVF16,PQ0", "has a size of 0"),
        ("LSH", "is an LSH index, which compares binary codes"),
        ("PCA4,LSH", "is an LSH index"),
        ("IVF16,,Flat", "has an empty component"),
        (",Flat", "has an empty component"),
        ("IVF16(PQ4,Flat", "has unbalanced parentheses"),
        ("IVF16,Flat;rm", r"contains ';'"),
        ("", "has an empty component"),
    ],
)
def test_degenerate_factory_strings_are_refused(index_type, match):
    with pytest.raises(ValueError, match=match):
        FaissNN(index_type=index_type).fit(np.random.default_rng(0).random((300, 8)))


@pytest.mark.parametrize("index_type", ["IVF32,Flat", "PCA8,IVF16,Flat", "IVF16_HNSW8,Flat",
                                        "HNSW8,SQ8", "IVF16,SQfp16", "OPQ4_16,IVF16,PQ4np"])
def test_valid_factory_strings_still_pass(index_type):
    # the checks refuse nothing FAISS can build and search: every string here gives real
    # neighbours (valid rows, sorted finite distances, most queries' exact nearest found)
    rng = np.random.default_rng(1)
    X = rng.random((2000, 16)).astype(np.float32)
    queries = X[:50] + rng.normal(scale=1e-3, size=(50, 16)).astype(np.float32)
    nn = FaissNN(5, index_type=index_type, target_recall=None, nprobe=16, random_state=0).fit(X)
    dist, ind = nn.kneighbors(queries)
    assert ((ind >= 0) & (ind < len(X))).all() and np.isfinite(dist).all()
    assert (np.diff(dist, axis=1) >= -1e-6).all()
    nearest = NearestNeighbors(n_neighbors=1).fit(X).kneighbors(queries)[1][:, 0]
    assert np.mean(ind[:, 0] == nearest) >= (0.5 if "PQ" in index_type or "PCA" in index_type else 0.9)


@pytest.mark.parametrize("scale", [1e20, 1e38])
@pytest.mark.parametrize("where", ["fit", "query", "sparse"])
def test_values_whose_squares_overflow_float32_are_refused(scale, where):
    X = np.random.default_rng(2).random((200, 8))
    nn = FaissNN(4)
    big = X * scale
    match = r"X has values up to .* in absolute value: their squared distances overflow FAISS's float32"
    if where == "fit":
        with pytest.raises(ValueError, match=match):
            nn.fit(big)
    elif where == "sparse":
        with pytest.raises(ValueError, match=match):
            nn.fit(sparse.csr_matrix(big))
    else:
        nn.fit(X)
        with pytest.raises(ValueError, match=match):
            nn.kneighbors(big[:3])
    with pytest.raises(ValueError, match=r"Scale the data first .*StandardScaler"):
        SMOTE(random_state=0).fit_resample(big, np.r_[np.zeros(150), np.ones(50)])
    # the largest safe values still give scikit-learn's neighbours
    safe = X * 1e17
    ref = NearestNeighbors(n_neighbors=4).fit(safe).kneighbors(return_distance=False)
    got = FaissNN(4).fit(safe).kneighbors(return_distance=False)
    assert (np.sort(got, axis=1) == np.sort(ref, axis=1)).mean() > 0.99


def test_uint64_near_its_top_is_refused_not_misreported():
    X = np.full((50, 3), 2**64 - 1, dtype=np.uint64) - np.arange(150, dtype=np.uint64).reshape(50, 3)
    with pytest.raises(ValueError, match="overflow FAISS's float32"):
        FaissNN(3).fit(X)


def test_nsg_graphs_larger_than_a_batch_are_built():
    # NSG cannot add vectors in several calls: like HNSW it is built in one
    rng = np.random.default_rng(5)
    X = rng.normal(size=(9000, 6)).astype(np.float32)
    X = np.vstack([X, X[:1000]])  # duplicates, grouped as for HNSW
    nn = FaissNN(5, index_type="NSG16,Flat", batch_size=4096, random_state=0).fit(X)
    ind = nn.kneighbors(X[:200], return_distance=False)
    ref = NearestNeighbors(n_neighbors=5).fit(X).kneighbors(X[:200])[0][:, -1]
    d = np.sqrt(((X[:200, None, :].astype(np.float64) - X[ind]) ** 2).sum(axis=2))
    assert (d <= ref[:, None] + 1e-5).mean() > 0.95
