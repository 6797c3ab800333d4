"""Sinks: where the resampled ``(X_chunk, y_chunk)`` blocks go.

A sink knows formats and how to write, never sampling.
"""

# License: BSD-3-Clause

import numpy as np


def to_arrays(blocks, n_rows, n_features, dtype, y_dtype):
    """Write the blocks into arrays preallocated once (no concatenation)."""
    X_out = np.empty((n_rows, n_features), dtype=dtype)
    y_out = np.empty(n_rows, dtype=y_dtype)
    position = 0
    for X_chunk, y_chunk in blocks:
        stop = position + X_chunk.shape[0]
        X_out[position:stop] = X_chunk
        y_out[position:stop] = y_chunk
        position = stop
    return X_out, y_out
