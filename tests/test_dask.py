"""The same resampling on a Dask cluster (joblib's dask backend) gives the same bytes.

Workers are separate processes: the chunks' inputs (the gathered source rows,
the drawn bases, partners and steps) cross the process boundary by pickling.
"""

import io

import numpy as np
import pytest
from sklearn.datasets import make_classification

pytest.importorskip("dask")
distributed = pytest.importorskip("dask.distributed")
joblib = pytest.importorskip("joblib")

from smote_ann import SMOTE, BorderlineSMOTE, FaissNN, iter_resample, resample_to_file  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=2000, n_features=8, weights=[0.7, 0.2], n_classes=3,
        n_clusters_per_class=1, random_state=0,
    )
    return X.astype(np.float32), y


SAMPLERS = {
    "SMOTE": lambda: SMOTE(random_state=0, chunk_size=64),
    "SMOTE-ivf": lambda: SMOTE(
        random_state=0, chunk_size=64,
        k_neighbors=FaissNN(n_neighbors=6, index_type="ivf", random_state=0),
    ),
    "BorderlineSMOTE": lambda: BorderlineSMOTE(random_state=0, chunk_size=64),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_fit_resample_same_bytes_on_dask(name, client, data):
    X, y = data
    X_ref, y_ref = SAMPLERS[name]().fit_resample(X, y)
    with distributed.get_task_stream(client) as tasks, joblib.parallel_config(backend="dask"):
        X_dask, y_dask = SAMPLERS[name]().fit_resample(X, y)
    # the synthetic chunks were computed by the cluster's worker processes
    assert any("interpolate" in task["key"] for task in tasks.data)
    assert X_dask.tobytes() == X_ref.tobytes()
    assert np.array_equal(y_dask, y_ref)


def test_streaming_same_bytes_on_dask(client, data, tmp_path):
    X, y = data
    np.save(tmp_path / "X.npy", X)
    X_map = np.load(tmp_path / "X.npy", mmap_mode="r")
    X_ref, y_ref = SAMPLERS["SMOTE"]().fit_resample(X, y)
    with joblib.parallel_config(backend="dask"):
        resample_to_file(SAMPLERS["SMOTE"](), X_map, y, tmp_path / "out.npy")
        blocks = list(iter_resample(SAMPLERS["SMOTE"](), X_map, y))
    buffer = io.BytesIO()
    np.save(buffer, X_ref)
    assert (tmp_path / "out.npy").read_bytes() == buffer.getvalue()
    assert np.array_equal(np.load(tmp_path / "out.labels.npy"), y_ref)
    assert np.concatenate([b[0] for b in blocks]).tobytes() == X_ref.tobytes()
