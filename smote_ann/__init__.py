"""smote_ann: large-scale SMOTE with FAISS nearest neighbours.

Public API
----------
FaissNN
    scikit-learn nearest-neighbour estimator backed by a FAISS index.
SMOTE
    imbalanced-learn's SMOTE with chunked, deterministic, parallel generation.
BorderlineSMOTE, ADASYN
    imbalanced-learn's SMOTE variants that weigh samples by their neighbours
    in the whole dataset, on the same engine.
measure_recall
    The recall of any neighbours estimator on your data, against an exact
    search, with the time of both.
resample_to_file, iter_resample
    Resample data bigger than memory (memory-mapped input) to ``.npy`` or
    Parquet files written a chunk at a time, or to a generator of blocks.
"""

from .neighbors import FaissNN, LowRecallWarning, RecallReport, measure_recall
from .over_sampling import ADASYN, SMOTE, BorderlineSMOTE
from .streaming import iter_resample, resample_to_file

__version__ = "0.1.0"

__all__ = [
    "ADASYN",
    "BorderlineSMOTE",
    "FaissNN",
    "LowRecallWarning",
    "RecallReport",
    "SMOTE",
    "__version__",
    "iter_resample",
    "measure_recall",
    "resample_to_file",
]
