"""Nearest neighbours on FAISS: the only package of smote_ann that imports faiss."""

# License: BSD-3-Clause

from ._faiss_nn import FaissNN
from ._graph import exclude_self as _exclude_self
from ._recall import LowRecallWarning, RecallReport, measure_recall

__all__ = ["FaissNN", "LowRecallWarning", "RecallReport", "measure_recall"]
