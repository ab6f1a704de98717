"""The bodies a race can start from: shipped and verified, chosen per race, refused by name when unknown."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from headstart.race import sources
from headstart.race.events import STRATEGIES, Done, Epoch, RaceConfig
from headstart.serving.app import create_app
from headstart.settings import Settings
from headstart.training import checkpoint, data, engine, models, pretrain
from tests.test_cli import run_cli


@pytest.mark.parametrize("source", list(sources.SOURCES))
def test_each_shipped_body_matches_its_card_and_reproduces_its_source_accuracy(real: Settings, source: str) -> None:
    path = sources.checkpoint_path(real.network.checkpoint, source)  # type: ignore[arg-type]
    card, state = checkpoint.load(
        path, real.network.width, real.network.blocks_per_stage, real.data.source_classes
    )  # the SHA-256 is checked
    assert card.source == source and card.fisher_sha256
    model = models.build(real.network.width, real.network.blocks_per_stage)
    model.load_state_dict(state)
    test = data.source_test(data.load(real), real, source)  # type: ignore[arg-type]
    assert round(pretrain.accuracy(model, test), 4) == card.source_test_acc


def test_far_scrambles_every_image_one_fixed_way_and_shuffled_keeps_each_class_count() -> None:
    x = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 251
    far = sources.images("far", x)
    assert not np.array_equal(far, x) and np.array_equal(np.sort(far, axis=None), np.sort(x, axis=None))
    assert np.array_equal(sources.images("far", x), far)  # the same scramble every time
    assert np.array_equal(far[1], sources.images("far", x[1:])[0])  # per image, not across images
    y = np.repeat(np.arange(5), 100)
    shuffled = sources.labels("shuffled", y)
    assert np.array_equal(np.bincount(shuffled), np.bincount(y)) and (shuffled != y).mean() > 0.5
    assert sources.images("near", x) is x and sources.labels("far", y) is y


@pytest.fixture(scope="module")
def res(tiny: Settings) -> engine.Resources:
    return engine.Resources.load(tiny)


def events(res: engine.Resources, **kw: object) -> list:
    return list(engine.run_race(RaceConfig(**({"n": 50, "epochs": 2, "locked": 2, "seed": 0} | kw)), res))


def test_a_race_starts_its_pretrained_strategies_from_the_chosen_body_and_scratch_from_none(
    res: engine.Resources, built_models: dict
) -> None:
    runs = {source: [e for e in events(res, source=source) if isinstance(e, Epoch)] for source in sources.SOURCES}
    frozen = next(model for (name, config), model in built_models.items() if name == "frozen" and config.source == "shuffled")
    frozen_body = {k: v.cpu() for k, v in frozen.state_dict().items() if k.split(".")[0] in models.UNITS}
    last = res.pretrained("shuffled").state
    assert all(torch.equal(frozen_body[k], last[k]) for k in frozen_body)
    scratch = {s: [(e.train_loss, e.test_acc) for e in r if e.strategy == "scratch"] for s, r in runs.items()}
    assert scratch["near"] == scratch["far"] == scratch["shuffled"]  # scratch does not depend on the source
    finetune = {s: [e.train_loss for e in r if e.strategy == "finetune"] for s, r in runs.items()}
    assert finetune["near"] != finetune["far"]
    # A body pretrained on noise has no source task to measure; the scrambled one has its own.
    assert {e.source_acc for e in runs["shuffled"]} == {None}
    assert all(e.source_acc is not None for e in runs["far"] if e.strategy != "scratch")


def test_a_missing_body_names_the_command_that_makes_it(tiny: Settings, tmp_path) -> None:
    weights = tmp_path / "only-near.safetensors"
    for suffix in (".safetensors", ".json", ".fisher.safetensors"):
        weights.with_suffix(suffix).write_bytes(tiny.network.checkpoint.with_suffix(suffix).read_bytes())
    res = engine.Resources.load(tiny.model_copy(update={"checkpoint": weights}))
    with pytest.raises(checkpoint.CheckpointError, match="python -m headstart pretrain --source far"):
        events(res, source="far")
    assert [e for e in events(res) if isinstance(e, Done)]  # the default body still races


@pytest.fixture(scope="module")
def client(tiny: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = tiny.model_copy(update={"database": tmp_path_factory.mktemp("db") / "races.sqlite3"})
    with TestClient(create_app(settings)) as c:
        yield c


def test_an_unknown_source_is_refused_naming_the_ones_there_are(client: TestClient) -> None:
    result = run_cli("race", "--source", "moon")
    assert result.returncode == 2 and "invalid choice: 'moon' (choose from 'near', 'far', 'shuffled')" in result.stderr
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "config": {"source": "moon"}})
        err = ws.receive_json()
    assert err["code"] == "invalid_message" and err["field"] == "config.source"
    assert "'near', 'far' or 'shuffled'" in err["message"]
    r = client.get("/api/sweep?source=moon")
    assert r.status_code == 422 and r.json()["field"] == "source" and "'near', 'far' or 'shuffled'" in r.json()["message"]


def test_the_config_describes_each_source_and_its_cards_accuracy(client: TestClient) -> None:
    body = client.get("/api/config").json()
    (field,) = [f for f in body["fields"] if f["name"] == "source"]
    assert [o["value"] for o in field["options"]] == list(sources.SOURCES) and all(o["description"] for o in field["options"])
    assert set(body["sources"]) == set(sources.SOURCES) and all(0 <= a <= 1 for a in body["sources"].values())
    assert STRATEGIES  # every strategy still races from whichever body


def test_a_stored_race_from_another_source_is_keyed_by_that_bodys_checkpoint_too() -> None:
    from headstart.race.identity import cache_key

    near, far = RaceConfig(), RaceConfig(source="far")
    assert "source" not in cache_key(near, "cpu", "recipe")  # the default race's key, as it always was
    assert cache_key(far, "cpu", "recipe", "ffeaa14e").endswith("|source ffeaa14e")
