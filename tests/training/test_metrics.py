"""Exact AUC / GAUC / LogLoss / calibration against hand-computed values."""
import math

import numpy as np
import pytest

from infnet_tf.metrics import MetricCollector, auc, gauc, logloss, mean_auc, task_metrics


def test_auc_with_ties_hand_computed():
    # pairs (pos, neg): (0.9,0.8)=1 (0.9,0.4)=1 (0.4,0.8)=0 (0.4,0.4)=1/2  -> 2.5 / 4
    assert auc(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.4, 0.4])) == pytest.approx(0.625)
    assert auc(np.array([0, 1]), np.array([0.3, 0.3])) == pytest.approx(0.5)
    assert auc(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.3])) == pytest.approx(1.0)
    assert auc(np.array([1, 1, 0]), np.array([0.1, 0.2, 0.3])) == pytest.approx(0.0)


def test_auc_single_class_is_nan():
    assert math.isnan(auc(np.array([1, 1]), np.array([0.1, 0.2])))
    assert math.isnan(auc(np.array([], dtype=int), np.array([])))


def test_gauc_hand_computed():
    users = np.array(["a", "a", "a", "b", "b", "c", "c", "d"])
    labels = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    scores = np.array([0.5, 0.6, 0.1, 0.2, 0.7, 0.3, 0.9, 0.4])
    # a: pos 0.5 vs negs 0.6, 0.1 -> 1/2 ; b: 1.0 ; c (only positives), d (only a negative): excluded
    uniform, weighted = gauc(labels, scores, users)
    assert uniform == pytest.approx((0.5 + 1.0) / 2)
    assert weighted == pytest.approx((0.5 * 3 + 1.0 * 2) / 5)


def test_gauc_ties_inside_user_only():
    users = np.array([1, 1, 2, 2])
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.5, 0.5, 0.5, 0.1])  # the tie is inside user 1 only
    assert gauc(labels, scores, users) == (pytest.approx(0.75), pytest.approx(0.75))


def test_gauc_no_user_with_both_classes_is_nan():
    uniform, weighted = gauc(np.array([1, 0]), np.array([0.1, 0.2]), np.array([1, 2]))
    assert math.isnan(uniform) and math.isnan(weighted)


def test_logloss_and_calibration_ignore_missing_labels():
    labels = np.array([1, 0, -1])
    probs = np.array([0.8, 0.4, 0.99])
    m = task_metrics(labels, probs, users=np.array([7, 7, 7]))
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert m["logloss"] == pytest.approx(expected)
    assert logloss(labels[:2], probs[:2]) == pytest.approx(expected)
    assert m["count"] == 2
    assert m["pred_mean"] == pytest.approx(0.6) and m["label_mean"] == pytest.approx(0.5)
    assert m["auc"] == pytest.approx(1.0) and m["gauc"] == pytest.approx(1.0)
    assert logloss(np.array([1]), np.array([0.0])) == pytest.approx(-math.log(1e-7))  # clipped


def test_collector_accumulates_batches_per_task():
    rng = np.random.default_rng(0)
    n = 200
    users = rng.integers(0, 20, n)
    click = rng.integers(0, 2, n)
    like = np.where(rng.random(n) < 0.2, -1, rng.integers(0, 2, n))
    p_click, p_like = rng.random(n), rng.random(n)
    collector = MetricCollector(["click", "like"])
    for lo in range(0, n, 64):
        sl = slice(lo, lo + 64)
        collector.update({"click": p_click[sl], "like": p_like[sl]},
                         {"click": click[sl], "like": like[sl]}, users[sl])
    result = collector.result()
    assert result["click"] == pytest.approx(task_metrics(click, p_click, users))
    assert result["like"] == pytest.approx(task_metrics(like, p_like, users))
    assert result["like"]["count"] == int(np.sum(like != -1))
    assert mean_auc(result) == pytest.approx((result["click"]["auc"] + result["like"]["auc"]) / 2)


def test_collector_rejects_mismatched_batches():
    collector = MetricCollector(["click"])
    with pytest.raises(ValueError, match="predictions"):
        collector.update({"click": np.zeros(3)}, {"click": np.zeros(2)})


def test_mean_auc_skips_undefined_tasks():
    assert mean_auc({"a": {"auc": 0.7}, "b": {"auc": float("nan")}}) == pytest.approx(0.7)
    assert math.isnan(mean_auc({"a": {"auc": float("nan")}}))
