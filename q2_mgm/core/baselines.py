"""The conventional baseline beside every MGM evaluation: a RandomForest on relative abundance."""
from typing import Sequence, Union

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

BASELINE_TREES = 500  # trees of the RandomForest beside every evaluation (the evaluate actions' default)


def relative_abundance(table: pd.DataFrame) -> pd.DataFrame:
    totals = table.sum(axis=1).replace(0, np.nan)
    return table.div(totals, axis=0).fillna(0.0)


def random_forest_baseline(abundance: pd.DataFrame, truth: pd.Series, test_ids: Union[pd.Index, Sequence[str]],
                           task: str, n_estimators: int = BASELINE_TREES, random_state: int = 0,
                           n_jobs: int = -1) -> Union[pd.DataFrame, pd.Series]:
    """Fit on the labelled samples outside test_ids and predict test_ids: class probabilities (DataFrame,
    columns = classes) or values (Series). n_jobs: threads fitting trees (-1: every CPU), which gives the same trees
    for any n_jobs; the predictions run on one thread, as threads would sum the trees' votes in any order."""
    features = relative_abundance(abundance)
    test_ids = pd.Index(test_ids)
    train_ids = truth.index.difference(test_ids).intersection(features.index)
    if len(train_ids) < 2:
        raise ValueError(f"The RandomForest baseline needs labelled training samples in the table besides the "
                         f"test samples, and finds {len(train_ids)}; pass as table the whole table the model was "
                         "trained from (and as training_corpus, where given, the corpus it was trained on).")
    estimator = (RandomForestClassifier if task == "classification" else RandomForestRegressor)(
        n_estimators=n_estimators, random_state=random_state, n_jobs=n_jobs)
    estimator.fit(features.loc[train_ids].to_numpy(), truth.loc[train_ids].to_numpy())
    estimator.set_params(n_jobs=1)
    test = features.reindex(test_ids).fillna(0.0).to_numpy()
    if task == "classification":
        return pd.DataFrame(estimator.predict_proba(test), index=test_ids, columns=estimator.classes_.astype(str))
    return pd.Series(estimator.predict(test), index=test_ids)
