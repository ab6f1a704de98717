from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from headstart.race import fashion
from headstart.settings import Settings, get_settings
from headstart.training import checkpoint, data, models
from headstart.training.pretrain import accuracy


def copy_checkpoint(tiny: Settings, tmp_path: Path) -> Path:
    dst = tmp_path / "c.safetensors"
    shutil.copy(tiny.network.checkpoint, dst)
    shutil.copy(checkpoint.card_path(tiny.network.checkpoint), checkpoint.card_path(dst))
    return dst


def load(path: Path, tiny: Settings):
    return checkpoint.load(path, tiny.network.width, tiny.network.blocks_per_stage, tiny.data.source_classes)


def test_a_good_checkpoint_loads_and_fits_the_model(tiny: Settings, tmp_path: Path) -> None:
    card, state = load(copy_checkpoint(tiny, tmp_path), tiny)
    assert card.epochs == 1 and card.width == tiny.network.width
    models.build(tiny.network.width, tiny.network.blocks_per_stage).load_state_dict(state)
    assert any(k.endswith("running_var") for k in state)


def test_a_flipped_byte_fails_the_hash_check(tiny: Settings, tmp_path: Path) -> None:
    path = copy_checkpoint(tiny, tmp_path)
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(checkpoint.CheckpointError, match="does not match its card"):
        load(path, tiny)


def test_missing_card_or_weights_or_other_shape_are_clear_errors(tiny: Settings, tmp_path: Path) -> None:
    path = copy_checkpoint(tiny, tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="made for"):
        checkpoint.load(path, tiny.network.width * 2, tiny.network.blocks_per_stage, tiny.data.source_classes)
    checkpoint.card_path(path).write_text("{not json")
    with pytest.raises(checkpoint.CheckpointError, match="card is not valid"):
        load(path, tiny)
    checkpoint.card_path(path).unlink()
    with pytest.raises(checkpoint.CheckpointError, match="card missing"):
        load(path, tiny)
    with pytest.raises(checkpoint.CheckpointError, match="card missing"):
        load(tmp_path / "nothing.safetensors", tiny)


def test_the_shipped_checkpoint_reproduces_its_card() -> None:
    """The committed weights load, and a subset of the source test set matches the card's accuracy."""
    settings = get_settings()
    card, state = checkpoint.load(
        settings.network.checkpoint, settings.network.width, settings.network.blocks_per_stage, settings.data.source_classes
    )
    assert card.source_test_acc >= 0.90
    try:
        dataset = data.load(settings)
    except fashion.DataError as exc:
        pytest.skip(f"Fashion-MNIST not installed: {exc}")
    model = models.build(settings.network.width, settings.network.blocks_per_stage)
    model.load_state_dict(state)
    test = data.source_test(dataset, settings)
    subset = data.Split(test.x[::5], test.y[::5])  # 1,000 of the 5,000 source test images
    assert accuracy(model, subset) == pytest.approx(card.source_test_acc, abs=0.02)
    assert json.loads(checkpoint.card_path(settings.network.checkpoint).read_text())["sha256"] == checkpoint.sha256(
        settings.network.checkpoint
    )


def test_pretraining_again_rebuilds_the_same_checkpoint_bit_for_bit(tiny: Settings, tmp_path: Path) -> None:
    from headstart.training.pretrain import pretrain

    first, again = (pretrain(tiny, tmp_path / f"{name}.safetensors", epochs=1, seed=0, batch=64) for name in ("first", "again"))
    assert first.sha256 == again.sha256
    assert first.trained_on and first.trained_on.startswith("cpu ")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pretrain_rebuilds_the_shipped_checkpoint(real: Settings, tmp_path: Path) -> None:
    """``python -m headstart pretrain`` is how the shipped weights were made: with the same kernels it
    must still make them bit for bit (about 2 min). Other kernels sum floats in another order.

    A CPU with a wider vector unit can run the narrower kernels: ATen and oneDNN each choose
    their own, so both are capped (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``
    rebuilds the AVX2 checkpoint bit for bit on an AVX-512 CPU; capping ATen alone does not).
    """
    import torch

    from headstart.training.devices import kernels
    from headstart.training.pretrain import pretrain

    shipped, _ = checkpoint.load(
        real.network.checkpoint, real.network.width, real.network.blocks_per_stage, real.data.source_classes
    )
    here = kernels(torch.device("cpu"))
    if shipped.trained_on != here or shipped.threads is None:
        pytest.skip(
            f"the shipped checkpoint was trained on {shipped.trained_on}; this machine is {here}"
            " (a wider CPU can run narrower kernels: see this test's docstring)"
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(shipped.threads)
    try:
        on_cpu = real.model_copy(update={"device": "cpu"})
        rebuilt = pretrain(on_cpu, tmp_path / "rebuilt.safetensors", epochs=shipped.epochs, seed=shipped.seed)
    finally:
        torch.set_num_threads(threads)
    assert rebuilt.sha256 == shipped.sha256
