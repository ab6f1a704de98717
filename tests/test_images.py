"""The datasets' images as the page shows them: thumbnails by name, cacheable for good, every bad
name refused with what there is; and each class's examples, of the target and of the source."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from headstart.race import datasets, fashion, pictures, sources
from headstart.serving.app import create_app
from headstart.settings import FASHION_CLASSES, Settings
from tests.conftest import make_image_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("own") / "shapes", per_class=14)


@pytest.fixture(scope="module")
def client(tiny: Settings, folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = tiny.with_datasets({"shapes": folder}).model_copy(
        update={"database": tmp_path_factory.mktemp("db") / "races.sqlite3"}
    )
    with TestClient(create_app(settings)) as c:
        yield c


def pixels(response) -> np.ndarray:  # type: ignore[no-untyped-def]
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_a_fashion_thumbnail_is_that_image_and_cached_for_good(client: TestClient, tiny: Settings) -> None:
    arrays = fashion.load(tiny)
    response = client.get("/api/images/fashion/fmnist/test/17.png")
    assert np.array_equal(pixels(response), arrays.test_images[17])
    assert "immutable" in response.headers["cache-control"] and "max-age=31536000" in response.headers["cache-control"]
    far = pixels(client.get("/api/images/fashion/fmnist/train-far/3.png"))
    assert np.array_equal(far, sources.images("far", arrays.train_images[3:4])[0])


def test_a_folder_thumbnail_is_its_file_by_its_place_in_the_test_listing(client: TestClient, folder: Path) -> None:
    version = client.app.state.hub.registry.folders["shapes"].fingerprint  # type: ignore[attr-defined]
    listing = [p for files in client.app.state.hub.registry.folders["shapes"].test for p in files]  # type: ignore[attr-defined]
    shown = pixels(client.get(f"/api/images/shapes/{version}/test/4.png"))
    assert shown.shape == (pictures.THUMBNAIL_SIDE, pictures.THUMBNAIL_SIDE, 3)
    assert np.array_equal(shown, pictures.decode(listing[4], pictures.THUMBNAIL_SIDE, 3))


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/api/images/fashion/fmnist/test/10000.png", "test set has images 0 to"),
        ("/api/images/fashion/fmnist/secret/1.png", "Fashion-MNIST's are test, train, train-far"),
        ("/api/images/fashion/old/test/1.png", "images are now version fmnist"),
        ("/api/images/leaves/x/test/1.png", "no dataset 'leaves'; there are fashion, shapes"),
        ("/api/images/fashion/fmnist/test/1.jpg", "named by its index"),
        ("/api/images/fashion/fmnist/test/-1.png", "named by its index"),
        ("/api/images/fashion/fmnist/test/..png", "named by its index"),
    ],
)
def test_a_name_that_is_no_image_is_refused_saying_what_there_is(client: TestClient, path: str, says: str) -> None:
    response = client.get(path)
    assert response.status_code == 404 and response.json()["code"] == "unknown_image"
    assert says in response.json()["message"]
    assert client.get("/api/images/fashion/fmnist/test/..%2F..%2Fpyproject.toml").status_code == 404


def test_a_folder_image_that_will_not_decode_is_refused_by_name(tiny: Settings, tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=14)
    found = datasets.scan("shapes", root)
    found.test[1][0].write_bytes(b"not an image")
    shelf = pictures.Pictures(tiny, {"shapes": datasets.scan("shapes", root)})
    place = len(found.test[0])
    with pytest.raises(pictures.NoSuchImage, match="not an image Pillow can read"):
        shelf.thumbnail("shapes", shelf.version("shapes"), "test", place)


def test_the_examples_are_the_first_images_a_race_learns_from(client: TestClient, tiny: Settings) -> None:
    rows = client.get("/api/examples").json()
    target = rows["target"]
    assert [c["name"] for c in target["classes"]] == [FASHION_CLASSES[c] for c in tiny.data.target_classes]
    arrays = fashion.load(tiny)
    first_ten = fashion.balanced_index(arrays.train_labels, tiny.data.target_classes, 10, tiny.data.data_seed)
    shown = {image["index"] for c in target["classes"] for image in c["images"][:2]}
    assert shown == set(first_ten.tolist())  # a race of n = 10 would learn from exactly these
    near = rows["source"]["classes"]
    assert [c["name"] for c in near] == [FASHION_CLASSES[c] for c in tiny.data.source_classes]
    for c, row in zip(tiny.data.source_classes, near, strict=True):
        assert all(arrays.train_labels[image["index"]] == c for image in row["images"])


def test_the_far_and_shuffled_sources_show_what_their_bodies_learned_from(client: TestClient, tiny: Settings) -> None:
    far = client.get("/api/examples?source=far").json()["source"]
    assert {image["part"] for c in far["classes"] for image in c["images"]} == {"train-far"}
    shuffled = client.get("/api/examples?source=shuffled").json()["source"]
    labels = fashion.load(tiny).train_labels
    true = [labels[image["index"]] for c in shuffled["classes"] for image in c["images"]]
    named = [FASHION_CLASSES.index(c["name"]) for c in shuffled["classes"] for image in c["images"]]
    assert true != named  # the labels it was told are not what the images show
    assert "random labels" in shuffled["title"]


def test_an_imagenet_body_says_its_source_images_are_not_here(client: TestClient) -> None:
    source = client.get("/api/examples?body=efficientnet_lite0").json()["source"]
    assert source["classes"] == [] and "ImageNet" in source["title"] and "not on this machine" in source["note"]
    assert client.get("/api/examples?body=vgg").json()["code"] == "invalid_request"


def test_a_folder_dataset_shows_its_own_classes(client: TestClient) -> None:
    target = client.get("/api/examples?dataset=shapes").json()["target"]
    assert [c["name"] for c in target["classes"]] == ["circle", "square", "triangle"]
    first = target["classes"][1]["images"][0]
    assert pixels(client.get(f"/api/images/shapes/{target['images_version']}/{first['part']}/{first['index']}.png")).ndim == 3
