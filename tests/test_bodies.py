"""Real ImageNet bodies: counted as built, loaded from torchvision's files or a package, raced honestly."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from headstart import cli
from headstart.race import bodies
from headstart.race.architecture import describe_units
from headstart.race.events import RaceConfig
from headstart.settings import Settings
from headstart.training import bodies as networks
from headstart.training import engine, lanes, models
from headstart.training.checkpoint import CheckpointError
from tests.conftest import make_image_folder

IMAGENET = [b for b in bodies.BODIES if b != "tiny"]


def _macs_224(unit: nn.Module, x: torch.Tensor) -> tuple[int, torch.Tensor]:
    """A unit's convolutions' multiply-accumulates on ``x``, and its output."""
    total = [0]
    hooks = [
        m.register_forward_hook(
            lambda m, _i, out: total.__setitem__(0, total[0] + m.weight.numel() * out.shape[2] * out.shape[3])
        )
        for m in unit.modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        out = unit.eval()(x)
    for hook in hooks:
        hook.remove()
    return total[0], out


@pytest.mark.parametrize("body", IMAGENET)
def test_each_bodys_counts_without_torch_equal_the_built_network(body: str) -> None:
    network = networks.build(body, Settings(), 5)
    spec = bodies.BODIES[body]
    x = torch.zeros(1, 3, 224, 224)
    for (_, unit), counts in zip(network.units(), spec.units, strict=True):
        macs, x = _macs_224(unit, x)
        assert (models.count_params(unit), macs) == (counts.params, counts.macs_224)
        rank = 3
        added = lanes.attach_lora(unit, rank)
        assert sum(a.lora_a.numel() + a.lora_b.numel() for a in added) == rank * counts.lora_per_rank
    assert network.head.in_features == spec.feature_dim == x.shape[1]
    assert [u.params for u in describe_units(Settings(), body, 5)][-1] == spec.feature_dim * 5 + 5


@pytest.mark.parametrize("body", [b for b in IMAGENET if bodies.BODIES[b].url])
def test_torchvision_bodies_name_torchvisions_own_files(body: str) -> None:
    import torchvision.models

    weights = torchvision.models.get_model_weights(body).DEFAULT
    assert bodies.BODIES[body].url == weights.url
    assert bodies.BODIES[body].weights == Path(weights.url).name
    assert list(bodies.BODIES[body].mean) == weights.transforms().mean


def _write_resnet18(folder: Path) -> dict[str, torch.Tensor]:
    """torchvision's ResNet-18, seeded, saved under the file name its download would have."""
    import torchvision.models

    torch.manual_seed(7)
    model = torchvision.models.resnet18(weights=None)
    for m in model.modules():  # running statistics unlike a fresh model's, so loading them is seen
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    folder.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    torch.save(state, folder / "resnet18-f37072fd.pth")
    return state


@pytest.fixture
def resnet18(tiny: Settings, tmp_path: Path) -> tuple[Settings, dict[str, torch.Tensor]]:
    state = _write_resnet18(tmp_path / "hub")
    return tiny.model_copy(update={"weights_dir": tmp_path / "hub", "image_size": 32}), state


def test_resnet_weights_load_from_torchvisions_file_onto_the_five_units(resnet18) -> None:
    settings, state = resnet18
    body = networks.imagenet_body("resnet18", settings)
    assert torch.equal(body["stem.0.weight"], state["conv1.weight"])
    assert torch.equal(body["stem.1.running_var"], state["bn1.running_var"])
    assert torch.equal(body["stage1.0.conv1.weight"], state["layer1.0.conv1.weight"])
    assert torch.equal(body["stage4.1.bn2.running_mean"], state["layer4.1.bn2.running_mean"])
    assert not any(key.startswith("head.") for key in body)


def test_a_missing_weights_file_is_named_with_where_it_goes_and_how_to_fetch_it(tiny: Settings, tmp_path: Path) -> None:
    settings = tiny.model_copy(update={"weights_dir": tmp_path / "empty"})
    why = bodies.unavailable("resnet34", settings)
    assert why is not None and "resnet34-b627a593.pth" in why and str(tmp_path / "empty") in why
    assert "headstart weights resnet34" in why
    with pytest.raises(CheckpointError, match=r"resnet34-b627a593\.pth"):
        networks.imagenet_body("resnet34", settings)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "resnet34-b627a593.pth").write_text("<html>not found</html>")
    with pytest.raises(CheckpointError, match="cannot read these weights"):
        networks.imagenet_body("resnet34", settings)


def test_torch_home_is_where_weights_are_looked_for_unless_configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert bodies.weights_path("resnet18", Settings()) == tmp_path / "th" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert bodies.weights_path("resnet18", Settings(weights_dir=tmp_path)) == tmp_path / "resnet18-f37072fd.pth"


def test_an_imagenet_body_races_with_its_units_frozen_as_loaded_and_no_source_task(resnet18, built_models) -> None:
    settings, state = resnet18
    res = engine.Resources.load(settings)
    config = RaceConfig.validate_with({"body": "resnet18", "n": 25, "epochs": 2, "locked": 3}, settings.limits)
    events = list(engine.run_race(config, res))
    plan, done = events[0], events[-1]
    assert [u.label for u in plan.units] == ["stem", "layer 1", "layer 2", "layer 3", "layer 4", "head"]
    assert plan.units[-1].params == 512 * 5 + 5 and plan.image_size == 32
    assert all(e.source_acc is None for e in events[1:-2])  # ImageNet's test set is not here to measure
    frozen, finetune = built_models[("frozen", config)], built_models[("finetune", config)]
    for name, tensor in frozen.state_dict().items():
        if not name.startswith("head."):  # every weight and every BatchNorm statistic, as loaded
            assert torch.equal(tensor.cpu(), networks.imagenet_body("resnet18", settings)[name]), name
    tuned = finetune.state_dict()
    assert torch.equal(tuned["stage2.0.bn1.running_mean"].cpu(), state["layer2.0.bn1.running_mean"])  # locked: kept
    assert not torch.equal(tuned["stage4.0.conv1.weight"].cpu(), state["layer4.0.conv1.weight"])  # unlocked: trained
    assert done.summary["frozen"].final_source_acc is None


def test_ewc_is_refused_on_an_imagenet_body_and_source_is_moot(tiny: Settings) -> None:
    with pytest.raises(ValueError, match="keep=ewc needs the source task's Fisher, which resnet50"):
        RaceConfig.validate_with({"body": "resnet50", "keep": "ewc"}, tiny.limits)
    far = RaceConfig.validate_with({"body": "resnet18", "source": "far"}, tiny.limits)
    assert "source" not in far.identity()  # an ImageNet body was pretrained on ImageNet, whatever the source
    assert "body" not in RaceConfig.validate_with({}, tiny.limits).identity()  # the default keeps its old key


def test_efficientnet_lite0s_packaged_weights_are_real_imagenet_weights() -> None:
    """Fed Grace Hopper's portrait, the packaged Lite0 answers ImageNet's *military uniform*."""
    import matplotlib.cbook
    from PIL import Image

    assert bodies.unavailable("efficientnet_lite0", Settings()) is None
    body = networks.imagenet_body("efficientnet_lite0", Settings())
    model, units = networks._imagenet("efficientnet_lite0")
    network = models.Network(units, 1280, 2)
    network.load_state_dict(body, strict=False)
    path = bodies.weights_path("efficientnet_lite0", Settings())
    assert path is not None
    classifier = torch.load(path, map_location="cpu", weights_only=True)
    model.classifier.load_state_dict({"weight": classifier["_fc.weight"], "bias": classifier["_fc.bias"]})
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as image:
        image = image.convert("RGB")
        w, h = image.size
        image = image.resize((round(w * 224 / min(w, h)), round(h * 224 / min(w, h))), Image.Resampling.BILINEAR)
        left, top = (image.width - 224) // 2, (image.height - 224) // 2
        pixels = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255
    x = (torch.from_numpy(pixels).permute(2, 0, 1)[None] - 0.5) / 0.5
    with torch.no_grad():
        probs = model.eval()(x).softmax(1)[0]
    assert int(probs.argmax()) == 652  # military uniform
    assert float(probs[652]) > 0.15


def test_efficientnet_lite0_races_a_folder_with_its_stages_grouped_into_four(tiny: Settings, tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=20)
    settings = tiny.with_datasets({"shapes": root}).model_copy(update={"image_size": 32})
    res = engine.Resources.load(settings)
    config = RaceConfig.validate_with(
        {"body": "efficientnet_lite0", "dataset": "shapes", "n": 30, "epochs": 1, "extra": "gradual,lora"}, settings.limits
    )
    events = list(engine.run_race(config, res))
    plan = events[0]
    assert [u.label for u in plan.units[:5]] == list(bodies.BODIES["efficientnet_lite0"].labels)
    assert plan.strategies["frozen"].trainable_params == 1280 * 3 + 3
    assert set(events[-1].summary) == {"scratch", "frozen", "finetune", "gradual", "lora"}


def test_the_weights_command_fetches_with_torchvisions_loader_or_says_what_to_do(
    tiny: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEADSTART_WEIGHTS_DIR", str(tmp_path))
    cli.get_settings.cache_clear()
    asked = []

    def offline(url: str, model_dir: str, **_: object) -> None:
        asked.append((url, model_dir))
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    try:
        assert cli.main(["weights", "resnet18"]) == 1
        err = capsys.readouterr().err
        assert (
            "https://download.pytorch.org/models/resnet18-f37072fd.pth" in err and f"resnet18-f37072fd.pth in {tmp_path}" in err
        )
        assert asked == [("https://download.pytorch.org/models/resnet18-f37072fd.pth", str(tmp_path))]
        _write_resnet18(tmp_path)
        assert cli.main(["weights", "resnet18"]) == 0
        assert "is already here" in capsys.readouterr().out
    finally:
        cli.get_settings.cache_clear()


def test_a_race_on_an_imagenet_body_is_costed_at_its_bodys_arithmetic(tiny: Settings) -> None:
    from headstart.race.cost import race_cost

    tiny_race = RaceConfig.validate_with({}, tiny.limits)
    lite0 = race_cost(tiny_race.model_copy(update={"body": "efficientnet_lite0"}), tiny)
    per_image = sum(macs for _, _, macs in bodies.unit_counts("efficientnet_lite0", tiny))
    assert per_image == pytest.approx(sum(c.macs_224 for c in bodies.BODIES["efficientnet_lite0"].units) * (96 / 224) ** 2, abs=5)
    assert lite0.total > 5 * race_cost(tiny_race, tiny).total  # the queue orders it as the larger race it is
