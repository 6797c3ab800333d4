"""The classic SMOTE tutorial, with smote_ann.

The credit-card-fraud tutorial's workflow: split the data (stratified), train
a LogisticRegression on the imbalanced training split, then again on the
training split oversampled with SMOTE, and compare the classification reports
on the untouched test split. Only the training split is ever resampled.

The data is the CoIL 2000 "Caravan" insurance set shipped in examples/data
(348 buyers among 5,822 customers; see examples/data/README.md), because the
credit-card data is not redistributable here. Run: python examples/fraud_tutorial.py
"""

import csv
import gzip
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import classification_report
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from smote_ann import SMOTE, FaissNN

with gzip.open(Path(__file__).parent / "data" / "caravan.csv.gz", "rt") as f:
    rows = list(csv.reader(f))[1:]
X = np.array([r[:-1] for r in rows], dtype=float)
y = np.array([r[-1] == "Yes" for r in rows], dtype=int)  # 1 = bought the policy (minority)

X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
clf = LogisticRegression(max_iter=2000)


def report(title, X_fit, y_fit):
    print(f"== {title}: training classes {dict(sorted(Counter(y_fit.tolist()).items()))}")
    clf.fit(X_fit, y_fit)
    print(classification_report(y_test, clf.predict(X_test), digits=3, zero_division=0))


report("Before SMOTE", X_train, y_train)
report("After SMOTE (exact neighbours)", *SMOTE(random_state=0).fit_resample(X_train, y_train))
approximate = SMOTE(random_state=0, k_neighbors=FaissNN(6, index_type="hnsw", random_state=0))
report("After SMOTE (approximate HNSW neighbours)", *approximate.fit_resample(X_train, y_train))
