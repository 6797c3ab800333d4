"""FaissNN as the neighbour search of imbalanced-learn's own SMOTE.

FaissNN follows scikit-learn's NearestNeighbors API (kneighbors,
kneighbors_graph), so it fits the ``k_neighbors`` slot of imbalanced-learn's
samplers unchanged. As in imbalanced-learn, its ``n_neighbors`` counts the
sample itself: ``FaissNN(6)`` gives each sample 5 neighbours, like
``k_neighbors=5``. At this size exact search is still cheap; the approximate
indexes pay off on millions of rows (see benchmarks/README.md).
Run: python examples/imblearn_with_faissnn.py
"""

import time
from collections import Counter

from imblearn.over_sampling import SMOTE
from sklearn.datasets import make_classification

from smote_ann import FaissNN

X, y = make_classification(
    n_samples=100_000, n_features=32, n_informative=16, weights=[0.9], random_state=0
)
print("before:", sorted(Counter(y.tolist()).items()))

for name, k_neighbors in [
    ("scikit-learn exact (imblearn's default)", 5),
    ("FaissNN flat (exact)", FaissNN(6, index_type="flat")),
    ("FaissNN IVF (approximate)", FaissNN(6, index_type="ivf", random_state=0)),
    ("FaissNN HNSW (approximate)", FaissNN(6, index_type="hnsw", random_state=0)),
]:
    start = time.perf_counter()
    X_res, y_res = SMOTE(k_neighbors=k_neighbors, random_state=0).fit_resample(X, y)
    elapsed = time.perf_counter() - start
    print(f"{name:40s} {elapsed:6.2f} s  after: {sorted(Counter(y_res.tolist()).items())}")
