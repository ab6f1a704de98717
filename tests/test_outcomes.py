"""What each strategy got right: the confusion matrices and per-class accuracies in done, and the
per-image predictions sent before it, checked against a direct count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from headstart.race import fashion
from headstart.race.events import Done, Plan, Predictions, RaceConfig
from headstart.settings import Settings
from headstart.training import data, engine
from tests.conftest import make_image_folder


@pytest.fixture(scope="module")
def res(tiny: Settings) -> engine.Resources:
    return engine.Resources.load(tiny)


def finished(res: engine.Resources, **fields: object) -> tuple[Plan, Predictions, Done]:
    config = RaceConfig.validate_with({"n": 50, "epochs": 2, "seed": 3} | fields, res.settings.limits)
    events = list(engine.run_race(config, res))
    assert [e.type for e in events[-2:]] == ["predictions", "done"]
    plan, predictions, done = events[0], events[-2], events[-1]
    assert isinstance(plan, Plan) and isinstance(predictions, Predictions) and isinstance(done, Done)
    return plan, predictions, done


def test_confusion_and_per_class_accuracy_match_a_direct_count(res: engine.Resources) -> None:
    plan, predictions, done = finished(res, extra=["gradual", "lora"])
    classes = len(plan.classes)
    truth = np.asarray(predictions.truth)
    assert len(truth) == plan.test_size and set(predictions.predicted) == set(done.summary)
    for name, summary in done.summary.items():
        predicted = np.asarray(predictions.predicted[name])
        assert len(predicted) == len(truth)  # every strategy counts the same test set
        direct = np.zeros((classes, classes), dtype=int)
        np.add.at(direct, (truth, predicted), 1)
        confusion = np.asarray(summary.confusion)
        assert np.array_equal(confusion, direct)
        assert confusion.sum(1).tolist() == np.bincount(truth, minlength=classes).tolist()  # rows: true class
        assert summary.per_class_acc == pytest.approx((confusion.diagonal() / confusion.sum(1)).tolist())
        assert summary.final_test_acc == pytest.approx(confusion.trace() / confusion.sum())


def test_the_predictions_name_each_test_image_in_its_dataset(res: engine.Resources) -> None:
    _, predictions, _ = finished(res)
    arrays = fashion.load(res.settings)
    assert predictions.dataset == "fashion" and predictions.images_version == fashion.VERSION
    index = np.asarray(predictions.index)
    assert np.array_equal(index, fashion.target_test_index(arrays, res.settings))
    order = res.settings.data.target_classes
    assert [order[t] for t in predictions.truth] == arrays.test_labels[index].tolist()
    assert np.array_equal(data.to_tensor(arrays.test_images[index]).numpy(), res.test.x.cpu().numpy())


def test_done_stays_small_and_the_predictions_go_apart(res: engine.Resources) -> None:
    _, predictions, done = finished(res, extra=["gradual", "lora"])
    assert len(json.dumps(done.model_dump(mode="json"))) < 64 * 1024
    assert "predicted" not in json.dumps(done.model_dump(mode="json"))
    assert len(predictions.index) == res.settings.data.test_size


def test_a_folder_race_names_its_test_images_past_a_skipped_one(tiny: Settings, tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=14)
    settings = tiny.with_datasets({"shapes": root})
    folder = engine.Resources.load(settings).folder("shapes")
    broken = folder.test[0][0]
    broken.write_bytes(b"not an image")
    resources = engine.Resources.load(settings)
    plan, predictions, done = finished(resources, dataset="shapes", n=30)
    assert predictions.images_version == resources.folder("shapes").fingerprint
    listing = [path for files in resources.folder("shapes").test for path in files]
    assert 0 not in predictions.index and len(predictions.index) == len(listing) - 1
    labels = {path: c for c, files in enumerate(resources.folder("shapes").test) for path in files}
    assert [labels[listing[i]] for i in predictions.index] == predictions.truth
    assert len(done.summary["scratch"].confusion or []) == len(plan.classes) == 3
