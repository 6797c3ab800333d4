"""Nearest neighbours on FAISS: the only package of smote_ann that imports faiss."""

# License: BSD-3-Clause

from ._faiss_nn import FaissNN, _exclude_self

__all__ = ["FaissNN"]
