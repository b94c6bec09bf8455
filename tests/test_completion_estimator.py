"""LowRankCompleter follows the scikit-learn estimator protocol."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from asymsense import InputError
from asymsense.completion import LowRankCompleter


def pairs(n1=40, n2=30, rank=2, frac=0.6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n1, rank)) @ rng.standard_normal((rank, n2)) + 2.0
    r, c = np.nonzero(rng.random((n1, n2)) < frac)
    ids = np.c_[np.array([f"user{i}" for i in r], dtype=object), c + 100]
    return ids, X[r, c] + 0.01 * rng.standard_normal(len(r)), X, r, c


def test_params_clone_and_set_params():
    est = LowRankCompleter(width=7, l2=0.01, random_state=3)
    params = est.get_params()
    assert params["width"] == 7 and params["random_state"] == 3 and params["unknown"] == "biases"
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    assert est.set_params(width=9) is est and est.width == 9
    with pytest.raises(ValueError, match="Invalid parameter 'rank'"):
        est.set_params(rank=3)
    assert repr(est) == "LowRankCompleter(l2=0.01, random_state=3, width=9)"
    grid = [3, 5]
    assert LowRankCompleter(width=grid).get_params()["width"] is grid  # stored unchanged


@pytest.mark.parametrize("check", ["check_no_attributes_set_in_init", "check_parameters_default_constructible",
                                   "check_get_params_invariance", "check_set_params"])
def test_scikit_learn_parameter_checks(check):
    from sklearn.utils import estimator_checks

    getattr(estimator_checks, check)("LowRankCompleter", LowRankCompleter())


@pytest.mark.slow
def test_fit_predict_score_with_string_and_int_ids():
    ids, y, X, r, c = pairs()
    est = LowRankCompleter(width=10, random_state=0, max_iter=1500, patience=100).fit(ids, y)
    assert est.n_features_in_ == 2 and est.seed_ == 0 and len(est.row_ids_) == 40
    assert est.score(ids, y) > 0.97
    missing = np.ones(X.shape, bool)
    missing[r, c] = False
    mr, mc = np.nonzero(missing)
    test_ids = np.c_[np.array([f"user{i}" for i in mr], dtype=object), mc + 100]
    assert est.rmse(test_ids, X[mr, mc]) < 0.25 * np.std(X)


def test_unknown_ids_error_or_biases_fallback():
    ids, y, *_ = pairs()
    est = LowRankCompleter(width=4, random_state=0, max_iter=30, unknown="error").fit(ids, y)
    new = np.array([["user0", 100], ["stranger", 100], ["user0", 999]], dtype=object)
    with pytest.raises(InputError, match="unknown row id 'stranger'"):
        est.predict(new)
    est.set_params(unknown="biases")
    p = est.predict(new)
    b = est.result_.biases
    known_col = est.col_map_.encode([100])[0]
    assert p[1] == pytest.approx(np.clip(b.mean + b.cols[known_col], *est.result_.clip))
    assert p[2] == pytest.approx(np.clip(b.mean + b.rows[est.row_map_.encode(["user0"])[0]], *est.result_.clip))


def test_predict_before_fit_and_bad_X():
    with pytest.raises(InputError, match="not fitted"):
        LowRankCompleter().predict(np.array([[1, 2]]))
    with pytest.raises(InputError, match=r"shape \(n, 2\)"):
        LowRankCompleter().fit(np.arange(6).reshape(2, 3), [1.0, 2.0])


@pytest.mark.slow
def test_grid_search_and_cross_val_score():
    ids, y, *_ = pairs(n1=30, n2=20)
    cv = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(LowRankCompleter(width=6, random_state=0, max_iter=300), ids, y, cv=cv)
    assert scores.shape == (3,) and np.all(np.isfinite(scores)) and scores.min() > 0.5
    grid = GridSearchCV(LowRankCompleter(random_state=0, max_iter=300), {"biases": ["none", "both"], "width": [1, 8]}, cv=cv)
    grid.fit(ids, y)
    assert grid.best_params_["width"] == 8
    assert grid.best_estimator_.result_.config["width"] == 8
