import json
import math

import numpy as np
import pytest
import torch

from geoseg.analysis.metrics import ConfusionMatrix
from geoseg.errors import InputError


def test_hand_computed_three_classes() -> None:
    # truth: 4x class 0, 3x class 1, 3x class 2; plus two ignored pixels
    truth = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 255, 255])
    pred = np.array([0, 0, 0, 1, 1, 1, 2, 2, 0, 0, 1, 2])
    cm = ConfusionMatrix(3)
    cm.update(pred, truth)
    assert cm.matrix.tolist() == [[3, 1, 0], [0, 2, 1], [2, 0, 1]]
    assert cm.total == 10
    pc = cm.per_class()
    # class 0: tp 3, fn 1, fp 2 -> IoU 3/6, precision 3/5, recall 3/4, F1 6/9
    # class 1: tp 2, fn 1, fp 1 -> IoU 2/4, precision 2/3, recall 2/3, F1 4/6
    # class 2: tp 1, fn 2, fp 1 -> IoU 1/4, precision 1/2, recall 1/3, F1 2/5
    assert pc["iou"] == pytest.approx([0.5, 0.5, 0.25])
    assert pc["precision"] == pytest.approx([0.6, 2 / 3, 0.5])
    assert pc["recall"] == pytest.approx([0.75, 2 / 3, 1 / 3])
    assert pc["f1"] == pytest.approx([2 / 3, 2 / 3, 0.4])
    assert cm.miou == pytest.approx((0.5 + 0.5 + 0.25) / 3)
    assert cm.overall_accuracy == pytest.approx(0.6)
    assert cm.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 0.4) / 3)


def test_class_without_support_is_nan_and_left_out_of_means() -> None:
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 2, 1, 1]), np.array([0, 0, 1, 1]))  # class 2 predicted, never true
    pc = cm.per_class()
    assert all(math.isnan(pc[k][2]) for k in ("iou", "f1", "precision", "recall"))
    assert pc["precision"][0] == 1.0 and pc["recall"][0] == 0.5
    assert cm.miou == pytest.approx((0.5 + 1.0) / 2)
    d = cm.to_dict()
    assert d["per_class"]["2"]["iou"] is None
    json.dumps(d, allow_nan=False)  # JSON-ready: no NaN


def test_supported_but_never_predicted_has_zero_precision() -> None:
    cm = ConfusionMatrix(2)
    cm.update([0, 0], [0, 1])
    assert cm.per_class()["precision"][1] == 0.0
    assert cm.per_class()["iou"][1] == 0.0


def test_merge_equals_one_update_and_torch_inputs() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 1000)
    truth[rng.random(1000) < 0.1] = 255
    pred = rng.integers(0, 4, 1000)
    whole = ConfusionMatrix(4)
    whole.update(pred, truth)
    a, b = ConfusionMatrix(4), ConfusionMatrix(4)
    a.update(torch.from_numpy(pred[:300]), torch.from_numpy(truth[:300]))
    b.update(pred[300:].reshape(7, 100), truth[300:].reshape(7, 100))
    assert np.array_equal(a.merge(b).matrix, whole.matrix)
    # reference: plain loops
    ref = np.zeros((4, 4), np.int64)
    for t, p in zip(truth, pred, strict=True):
        if t != 255:
            ref[t, p] += 1
    assert np.array_equal(whole.matrix, ref)


def test_empty_matrix_scores_are_nan() -> None:
    cm = ConfusionMatrix(2)
    cm.update([0, 1], [255, 255])
    assert cm.total == 0
    assert math.isnan(cm.miou) and math.isnan(cm.overall_accuracy)
    assert cm.to_dict()["miou"] is None


@pytest.mark.parametrize(
    ("pred", "truth"),
    [([0, 5], [0, 1]), ([0, 1], [0, 7]), ([0, -1], [0, 1]), ([0.5, 1.0], [0, 1]), ([0], [0, 1])],
)
def test_bad_values_raise(pred: list[float], truth: list[int]) -> None:
    with pytest.raises(InputError):
        ConfusionMatrix(2).update(pred, truth)


def test_merge_mismatch_and_bad_construction() -> None:
    with pytest.raises(InputError):
        ConfusionMatrix(2).merge(ConfusionMatrix(3))
    with pytest.raises(InputError):
        ConfusionMatrix(0)
    with pytest.raises(InputError):
        ConfusionMatrix(2, names=["a"])
