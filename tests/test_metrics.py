"""tinyst.evaluation.metrics against hand-derived values and against scipy / scikit-learn."""
import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from tinyst.evaluation import metrics as M


def test_rankdata_averages_ties_by_hand():
    """[10, 20, 20, 5] ranks to [2, 3.5, 3.5, 1]: the tied pair shares the mean of ranks 3 and 4."""
    np.testing.assert_array_equal(M.rankdata([10, 20, 20, 5]), [2, 3.5, 3.5, 1])


def test_pearson_spearman_by_hand():
    """y = x^3 is perfectly monotone (Spearman 1) but not linear; Pearson by the textbook formula."""
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = x**3
    xm, ym = x - 2.5, y - y.mean()
    assert M.pearson(x, y) == pytest.approx((xm @ ym) / np.sqrt((xm @ xm) * (ym @ ym)), abs=1e-15)
    assert M.spearman(x, y) == pytest.approx(1.0, abs=1e-15)
    # ties: x ranks [1.5, 1.5, 3], y ranks [1, 2, 3] -> r = 0.75 / sqrt(0.5 * 2) = 0.866...
    assert M.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(np.sqrt(3) / 2, abs=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_correlations_match_scipy_with_heavy_ties(seed):
    """Pearson and tie-averaged Spearman equal scipy on data with many tied values."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, 300).astype(float)  # STS-like integer gold scores: many ties
    y = np.round(x + rng.normal(0, 2, 300), 1)  # rounded predictions: more ties
    assert M.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert M.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)


def test_constant_input_warns_nan():
    """A constant input makes correlation undefined: NaN with a warning, as scipy does."""
    with pytest.warns(RuntimeWarning, match="constant"):
        assert np.isnan(M.pearson([1, 1, 1], [1, 2, 3]))


def test_average_precision_by_hand_with_ties():
    """Labels [1,0,1,0] at scores [.9,.8,.8,.1]: thresholds .9 (P=1,R=.5) and the tie group .8
    (P=2/3,R=1) give AP = .5*1 + .5*2/3; a tie counts as one threshold."""
    assert M.average_precision([1, 0, 1, 0], [0.9, 0.8, 0.8, 0.1]) == pytest.approx(0.5 + 1 / 3, abs=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_and_mcc_match_sklearn(seed):
    """AP (tied scores grouped) and MCC equal scikit-learn on random tied data."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)
    assert M.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    pred = s > 0.5
    assert M.matthews_corrcoef(y, pred) == pytest.approx(skm.matthews_corrcoef(y, pred), abs=1e-12)


def test_mcc_by_hand_and_degenerate():
    """MCC with tp=2, tn=1, fp=1, fn=0 is (2-0)/sqrt(3*2*2*1); all-one predictions give 0."""
    assert M.matthews_corrcoef([1, 1, 0, 0], [1, 1, 1, 0]) == pytest.approx(2 / np.sqrt(12), abs=1e-15)
    assert M.matthews_corrcoef([1, 0, 1], [1, 1, 1]) == 0.0


def test_threshold_sweeps_by_hand():
    """Scores [.9,.7,.6,.2] labels [1,0,1,0]: predicting top 1 or top 3 positive gives accuracy 3/4;
    the first one wins (threshold (.9+.7)/2). Best F1 is at the top 3: P=2/3, R=1, F1=.8."""
    acc, thr = M.best_accuracy_threshold([0.9, 0.7, 0.6, 0.2], [1, 0, 1, 0])
    assert (acc, thr) == pytest.approx((0.75, 0.8))
    f1, p, r, thr = M.best_f1_threshold([0.9, 0.7, 0.6, 0.2], [1, 0, 1, 0])
    assert (f1, p, r, thr) == pytest.approx((0.8, 2 / 3, 1.0, 0.4))
    # lower-is-better scores (distances) sweep from the smallest
    acc, thr = M.best_accuracy_threshold([0.1, 0.3, 0.4, 0.8], [1, 0, 1, 0], greater_is_better=False)
    assert (acc, thr) == pytest.approx((0.75, 0.2))


@pytest.mark.parametrize("seed", range(3))
def test_threshold_sweeps_match_st(seed):
    """Sweeps equal ST 3.4.1's own implementation, including tied scores."""
    from sentence_transformers.evaluation import BinaryClassificationEvaluator as ST

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(size=300) + y, 1)
    assert M.best_accuracy_threshold(s, y) == pytest.approx(ST.find_best_acc_and_threshold(s, y, True), abs=1e-12)
    assert M.best_f1_threshold(s, y) == pytest.approx(ST.find_best_f1_and_threshold(s, y, True), abs=1e-12)


def test_ndcg_score_by_hand_with_ties():
    """Gains [1,0] tied at one score share positions 1 and 2: DCG = .5*(1 + 1/log2 3); IDCG = 1."""
    assert M.ndcg_score([1, 0], [0.5, 0.5]) == pytest.approx(0.5 * (1 + 1 / np.log2(3)), abs=1e-15)
    assert M.ndcg_score([0, 1, 0], [0.9, 0.3, 0.1], k=1) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_ndcg_score_matches_sklearn(seed):
    """Graded, tie-averaged NDCG@k equals sklearn.metrics.ndcg_score."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 4, 30).astype(float)
    s = np.round(rng.normal(size=30), 1)
    for k in (1, 5, 10, None):
        assert M.ndcg_score(g, s, k=k) == pytest.approx(skm.ndcg_score([g], [s], k=k), abs=1e-12)


def test_ranking_metrics_by_hand():
    """Two queries: q0 ranks hit, miss, hit (2 relevant); q1 ranks miss, miss, hit (1 relevant)."""
    hits = [[1, 0, 1], [0, 0, 1]]
    n_rel = [2, 1]
    assert M.accuracy_at_k(hits, 1) == 0.5
    assert M.accuracy_at_k(hits, 3) == 1.0
    assert M.precision_at_k(hits, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert M.recall_at_k(hits, n_rel, 1) == pytest.approx((1 / 2 + 0) / 2)
    assert M.mrr_at_k(hits, 3) == pytest.approx((1 + 1 / 3) / 2)
    assert M.mrr_at_k(hits, 2) == pytest.approx(0.5)
    d = 1 / np.log2(np.arange(2, 5))  # discounts of ranks 1..3
    ndcg0 = (d[0] + d[2]) / (d[0] + d[1])
    ndcg1 = d[2] / d[0]
    assert M.ndcg_at_k(hits, n_rel, 3) == pytest.approx((ndcg0 + ndcg1) / 2)
    map0 = (1 / 1 + 2 / 3) / 2
    map1 = (1 / 3) / 1
    assert M.map_at_k(hits, n_rel, 3) == pytest.approx((map0 + map1) / 2)
    assert M.map_at_k(hits, n_rel, 1) == pytest.approx((1 / 1 + 0) / 2)  # divides by min(k, n_rel)
    assert M.precision_at_k(hits, 10) == pytest.approx((2 / 10 + 1 / 10) / 2)  # short lists still / k


def test_bad_inputs_raise_clear_errors():
    """Different lengths, empty inputs, NaN scores and non-binary labels are ValueErrors."""
    with pytest.raises(ValueError, match="lengths differ"):
        M.spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        M.pearson([], [])
    with pytest.raises(ValueError, match="NaN"):
        M.spearman([1, 2, float("nan")], [1, 2, 3])
    with pytest.raises(ValueError, match="0 or 1"):
        M.average_precision([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0 or 1"):
        M.best_f1_threshold([0.1, 0.2], [0, 0.5])
    with pytest.raises(ValueError, match="positive label"):
        M.average_precision([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="at least one relevant"):
        M.recall_at_k([[1, 0]], [0], 1)
