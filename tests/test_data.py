from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from headstart.race import fashion
from headstart.training import data
from tests.conftest import make_fake_dataset, tiny_settings, write_idx


def test_read_idx_roundtrip_gzip_and_raw(tmp_path: Path) -> None:
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / "a.gz", array)
    (tmp_path / "a").write_bytes(gzip.decompress((tmp_path / "a.gz").read_bytes()))
    assert np.array_equal(fashion.read_idx(tmp_path / "a.gz"), array)
    assert np.array_equal(fashion.read_idx(tmp_path / "a"), array)


def test_truncated_file_is_named_in_the_error(tmp_path: Path) -> None:
    write_idx(tmp_path / "x.gz", np.zeros((3, 28, 28), dtype=np.uint8))
    raw = gzip.decompress((tmp_path / "x.gz").read_bytes())
    (tmp_path / "x").write_bytes(raw[:-10])
    with pytest.raises(fashion.DataError, match=r"x: truncated or corrupt"):
        fashion.read_idx(tmp_path / "x")
    (tmp_path / "y.gz").write_bytes((tmp_path / "x.gz").read_bytes()[:20])
    with pytest.raises(fashion.DataError, match=r"y.gz: cannot read"):
        fashion.read_idx(tmp_path / "y.gz")
    (tmp_path / "z").write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(fashion.DataError, match="bad magic"):
        fashion.read_idx(tmp_path / "z")


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path: Path) -> None:
    settings = tiny_settings(tmp_path)
    with pytest.raises(fashion.DataError) as info:
        data.locate(settings)
    message = str(info.value)
    assert str(settings.data.data_dir) in message and str(settings.data.system_data_dir) in message
    assert "apt-get install dataset-fashion-mnist" in message and "HEADSTART_ALLOW_DOWNLOAD" in message


def test_a_configured_folder_without_the_data_is_named_when_passed_over(tmp_path: Path, caplog) -> None:
    settings = tiny_settings(tmp_path)
    make_fake_dataset(tmp_path / "system")
    settings = settings.model_copy(update={"data_dir": tmp_path / "typo", "system_data_dir": tmp_path / "system"})
    with caplog.at_level("WARNING", logger="headstart.training.data"):
        files = data.locate(settings)
    assert files["train_images"].parent == tmp_path / "system"
    assert f"HEADSTART_DATA_DIR={tmp_path / 'typo'} holds no Fashion-MNIST" in caplog.text


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> tuple[fashion.FashionMNIST, object]:
    root = tmp_path_factory.mktemp("fake")
    make_fake_dataset(root / "data")
    settings = tiny_settings(root)
    return data.load(settings), settings


def test_source_and_target_classes_are_disjoint_and_complete(fake) -> None:
    _, settings = fake
    assert set(settings.data.source_classes).isdisjoint(settings.data.target_classes)
    assert sorted((*settings.data.source_classes, *settings.data.target_classes)) == list(range(10))


def test_target_subset_is_balanced_and_nested(fake) -> None:
    dataset, settings = fake
    small = fashion.balanced_index(dataset.train_labels, settings.data.target_classes, 50, seed=0)
    large = fashion.balanced_index(dataset.train_labels, settings.data.target_classes, 103, seed=0)
    assert set(small) <= set(large)
    counts = np.bincount(dataset.train_labels[large], minlength=10)[list(settings.data.target_classes)]
    assert counts.max() - counts.min() <= 1 and counts.sum() == 103
    assert np.isin(dataset.train_labels[large], settings.data.target_classes).all()


def test_subsets_are_deterministic_and_labels_remapped(fake) -> None:
    dataset, settings = fake
    a, b = data.target_train(dataset, settings, 50), data.target_train(dataset, settings, 50)
    assert a.x.equal(b.x) and a.y.equal(b.y)
    assert a.y.bincount().tolist() == [10] * 5
    assert a.x.shape == (50, 1, 28, 28)


def test_test_set_is_fixed_and_balanced(fake) -> None:
    dataset, settings = fake
    test = data.target_test(dataset, settings)
    assert len(test) == settings.data.test_size
    assert test.y.bincount().tolist() == [settings.data.test_size // 5] * 5
    assert test.x.equal(data.target_test(dataset, settings).x)


def test_asking_for_more_than_a_class_has_is_an_error(fake) -> None:
    dataset, settings = fake
    with pytest.raises(fashion.DataError, match="has only"):
        data.target_train(dataset, settings, 5000)
