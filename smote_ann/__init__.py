"""smote_ann: large-scale SMOTE with FAISS nearest neighbours.

Public API
----------
FaissNN
    scikit-learn nearest-neighbour estimator backed by a FAISS index.
SMOTE
    imbalanced-learn's SMOTE with chunked, deterministic, parallel generation.
"""

from .neighbors import FaissNN
from .over_sampling import SMOTE

__version__ = "0.1.0"

__all__ = ["FaissNN", "SMOTE", "__version__"]
