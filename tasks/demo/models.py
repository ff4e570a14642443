"""Demo input: three small scikit-learn iris classifiers in the layout the KServe sklearn runtime reads
(one ``model.joblib`` per version directory).

- ``v1`` good: a depth-2 decision tree.
- ``v2`` better: multinomial logistic regression on all four features.
- ``v3`` deliberately bad: the same regression trained on shuffled labels (about chance); the canary
  demo uses it to show a rollback.

All three take the four iris features (sepal length/width, petal length/width, cm) and return the class index.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VERSIONS = ("v1", "v2", "v3")
SEED = 7


@dataclass(frozen=True)
class TrainedModel:
    """One trained version: its directory, held-out accuracy (fraction 0..1) and a one-line description."""

    version: str
    path: Path
    accuracy: float
    description: str


def train_iris_models(out_dir: str | Path) -> list[TrainedModel]:
    """Train v1..v3 on the iris data shipped with scikit-learn; write ``<out_dir>/<version>/model.joblib``.

    Accuracy is measured on a stratified 30 % hold-out (same split for all three). Deterministic (fixed seeds).
    """
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, stratify=y, random_state=SEED)
    shuffled = np.random.default_rng(SEED).permutation(y_train)
    recipes = {
        "v1": (DecisionTreeClassifier(max_depth=2, random_state=SEED), y_train, "depth-2 decision tree (good)"),
        "v2": (LogisticRegression(max_iter=1000), y_train, "logistic regression (better)"),
        "v3": (LogisticRegression(max_iter=1000), shuffled, "trained on shuffled labels (bad on purpose)"),
    }
    out: list[TrainedModel] = []
    for version, (model, labels, description) in recipes.items():
        model.fit(x_train, labels)
        path = Path(out_dir) / version
        path.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, path / "model.joblib")
        out.append(TrainedModel(version, path, float(model.score(x_test, y_test)), description))
    return out
