"""One source of truth for limits, defaults, paths and the device.

Every number a user can change has its default and its range here; the CLI, the
API's validation and the page's sliders (via ``GET /api/config``) all read them. They come in
sections (data, network, training, limits, server, quotas, ray, paths, uploads); an environment
variable sets any of them by its flat name (``HEADSTART_WIDTH``), as it always has, or by its
section (``HEADSTART_NETWORK__WIDTH``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# Bumped whenever the engine's numbers change with no setting changing (an optimizer
# implementation, a schedule's shape), so stored races of the old recipe are not replayed.
ENGINE_RECIPE = 3  # 3: the CPU trains channels_last from width 16 up

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
# An installed wheel carries the page and the shipped sweep inside the package (pyproject.toml
# maps them there); a checkout keeps them at the top of the repository.
INSTALLED = (PACKAGE_DIR / "_static").is_dir()
STATIC_DIR = PACKAGE_DIR / "_static" if INSTALLED else PROJECT_DIR / "static"
TEMPLATES_DIR = PACKAGE_DIR / "_templates" if INSTALLED else PROJECT_DIR / "templates"
SWEEP_DIR = PACKAGE_DIR / "_sweep" if INSTALLED else PROJECT_DIR / "docs" / "sweep"
# Races are kept beside the checkout, or, installed, where the user's data goes.
DATA_HOME = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "headstart"

PREFIX = "HEADSTART_"  # of every environment setting

BUILT_IN_DATASET = "fashion"  # the Fashion-MNIST task every lesson was calibrated on
DATASET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
# An uploaded dataset's id: unguessable (96 random bits), so only a link that carries it finds it.
UPLOAD_PREFIX = "up-"
UPLOAD_ID = re.compile(rf"{UPLOAD_PREFIX}[0-9a-f]{{24}}")

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


Number = TypeVar("Number", int, float)


class Range(BaseModel, Generic[Number]):
    """A user-adjustable number: its allowed range and its default."""

    min: Number
    max: Number
    default: Number

    @model_validator(mode="after")
    def _ordered(self) -> Range[Number]:
        if not self.min <= self.default <= self.max:
            raise ValueError(f"need min <= default <= max, got {self.min}, {self.default}, {self.max}")
        return self


IntRange = Range[int]
FloatRange = Range[float]


class Choice(BaseModel):
    """A user-chosen option: its default, and the options where they are the settings' (the
    datasets a server offers); otherwise the field's own type names them."""

    default: str
    options: tuple[str, ...] = ()
    # Besides the options, any value of this form, which the server then looks up (an upload's id).
    pattern: str | None = None
    pattern_means: str = ""

    def allows(self, value: str) -> bool:
        return not self.options or value in self.options or bool(self.pattern and re.fullmatch(self.pattern, value))


class Choices(BaseModel):
    """Several options chosen at once: the default set (the options are the field's own type)."""

    default: tuple[str, ...]


# Race fields' former names, still read wherever a name is read (links, the CLI, environment
# settings, stored races, sweep CSVs): "frozen" read as the number of locked units beside the
# strategy called Frozen.
FORMER_NAMES = {"frozen": "locked"}


def renamed(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with any former name replaced by today's. Where both are given, today's wins,
    but for parts of a range: a setting's defaults come under today's name, and a former name
    in the environment (``HEADSTART_LIMITS__FROZEN__MAX``) sets one part of them."""
    out = {name: value for name, value in fields.items() if name not in FORMER_NAMES}
    for former, value in fields.items():
        name = FORMER_NAMES.get(former)
        if name is None:
            continue
        both = isinstance(value, Mapping) and isinstance(out.get(name), Mapping)
        out[name] = {**out[name], **value} if both else out.get(name, value)
    return out


class Limits(BaseModel):
    """Ranges and defaults of every race parameter a user can set."""

    # Body units fine-tune locks, counted from the input; 5 would be the frozen strategy, so
    # stage 4 always trains.
    locked: IntRange = IntRange(min=0, max=4, default=2)
    # Target training images; the minimum keeps at least 5 images per target class.
    n: IntRange = IntRange(min=25, max=5000, default=200)
    epochs: IntRange = IntRange(min=1, max=50, default=10)
    seed: IntRange = IntRange(min=0, max=2**31 - 1, default=0)
    # AdamW learning rates: scratch trains everything from random init; the new head of
    # frozen and fine-tune trains at lr_head; fine-tune's unlocked body units at
    # lr_head * body_lr_ratio (discriminative learning rates, as in fastai).
    lr_scratch: FloatRange = FloatRange(min=1e-5, max=1e-1, default=2e-3)
    lr_head: FloatRange = FloatRange(min=1e-5, max=1e-1, default=1e-2)
    body_lr_ratio: FloatRange = FloatRange(min=0.01, max=1.0, default=0.1)
    # What frozen's and fine-tune's body was pretrained on (headstart/race/sources.py).
    source: Choice = Choice(default="near")
    # A penalty that pulls fine-tune's trained body units back toward the pretrained weights
    # (none, L2-SP or EWC), and its strength, α or λ, on one scale (headstart/training/regularisers.py).
    keep: Choice = Choice(default="none")
    keep_strength: FloatRange = FloatRange(min=1e-3, max=1e2, default=0.03)
    # Lanes a race adds beside the three (gradual unfreezing, LoRA; headstart/training/lanes.py): none by
    # default. LoRA's rank: the width of each body convolution's low-rank update.
    extra: Choices = Choices(default=())
    lora_rank: IntRange = IntRange(min=1, max=16, default=4)
    # The target task's images: the built-in one, or a folder of the server's (data.datasets).
    dataset: Choice = Choice(
        default="fashion", options=("fashion",), pattern=UPLOAD_ID.pattern, pattern_means="an uploaded dataset's id (up-…)"
    )
    # The network: the built-in tiny ResNet, or a real ImageNet body (headstart/race/bodies.py).
    body: Choice = Choice(default="tiny")

    @model_validator(mode="before")
    @classmethod
    def _former_names(cls, data: object) -> object:
        return renamed(data) if isinstance(data, Mapping) else data


def offering(limits: Limits, datasets: Mapping[str, Any]) -> Limits:
    """``limits`` whose dataset field allows the built-in task and ``datasets``."""
    options = (BUILT_IN_DATASET, *sorted(datasets))
    return limits.model_copy(update={"dataset": limits.dataset.model_copy(update={"options": options})})


class DataSettings(BaseModel):
    """The images: where Fashion-MNIST is found, and how it is split into the two tasks."""

    # A folder holding the four Fashion-MNIST IDX files (gzip or raw); searched first.
    data_dir: Path | None = None
    # Where Debian's dataset-fashion-mnist package puts the files; searched second.
    system_data_dir: Path = Path("/usr/share/datasets/fashion-mnist")
    # Opt-in: fetch the data with torchvision's downloader into download_dir.
    allow_download: bool = False
    download_dir: Path = Path.home() / ".cache" / "headstart"
    # The pretraining (source) task; the other five classes are the target task.
    # Tops and footwear appear on both sides, so the source teaches shapes that transfer.
    source_classes: tuple[int, ...] = (0, 1, 4, 5, 8)
    # Fixed, seeded, class-balanced subset of the official test set's target images.
    test_size: int = Field(default=1000, ge=5)
    # Fixed, seeded, class-balanced subset of the source classes' test images, on which each
    # epoch measures what a strategy's body still knows of the source task (``source_acc``).
    source_test_size: int = Field(default=1000, ge=5)
    data_seed: int = 0
    # A teacher's own image folders, by the name races choose them by: one subfolder per class
    # (torchvision's ImageFolder layout, 2–20 classes), split once, seeded (headstart/race/datasets.py).
    datasets: dict[str, Path] = {}

    @field_validator("datasets")
    @classmethod
    def _dataset_names(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name in value:
            if not DATASET_NAME.fullmatch(name) or name == BUILT_IN_DATASET or UPLOAD_ID.fullmatch(name):
                raise ValueError(
                    f"dataset name {name!r}: use 1-32 lower-case letters, digits, '-' or '_', other than {BUILT_IN_DATASET!r} "
                    "and an upload's id (up- and 24 hex digits)"
                )
        return value

    @property
    def target_classes(self) -> tuple[int, ...]:
        return tuple(c for c in range(10) if c not in self.source_classes)

    @model_validator(mode="after")
    def _valid_split(self) -> DataSettings:
        if len(set(self.source_classes)) != 5 or not all(0 <= c <= 9 for c in self.source_classes):
            raise ValueError(f"source_classes must be 5 distinct classes in 0..9, got {self.source_classes}")
        return self


class NetworkSettings(BaseModel):
    """The network's shape and its pretrained checkpoint."""

    # Channels of stage 1; stages 2-4 double it. 16 keeps a CPU race in seconds.
    width: int = Field(default=16, ge=4, le=128)
    blocks_per_stage: int = Field(default=1, ge=1, le=4)
    checkpoint: Path = PACKAGE_DIR / "weights" / "fmnist-source.safetensors"
    # Where the ImageNet bodies' weights lie under torchvision's file names; unset, where
    # torch.hub keeps them ($TORCH_HOME/hub/checkpoints).
    weights_dir: Path | None = None
    # The side of an ImageNet body's images; unset, each body's own for the device (headstart/race/bodies.py).
    image_size: int | None = Field(default=None, ge=16, le=512)


class TrainingSettings(BaseModel):
    """How every race trains: batches, decay, schedules, the device and what is kept."""

    batch_size: int = Field(default=64, ge=1)
    # Frozen trains only a head on cached features, where a step costs next to nothing, so
    # it takes smaller batches: more steps per epoch, as one would train a linear probe.
    frozen_batch_size: int = Field(default=32, ge=1)
    # Batch for evaluation and for the locked units' pass. It changes no result beyond float
    # rounding, so it is not part of the recipe. 250 keeps a batch's activations in the CPU's
    # cache where the whole test set at once spills out (docs/performance.md).
    eval_batch_size: int = Field(default=250, ge=1)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    # Fine-tune's rates ramp up linearly over its first warmup_epochs (at most half the run):
    # the new head's random first gradients would otherwise tear at the pretrained units it
    # unlocks. Frozen has nothing to protect and scratch nothing pretrained: no warm-up.
    warmup_epochs: float = Field(default=2.0, ge=0.0)
    # Every strategy's rates then decay along a cosine to zero by the last step, so the final
    # accuracy reflects what was learned, not where the last noisy step happened to land.
    cosine_decay: bool = True
    # Train the layers after the locked ones on features computed once per race: exact,
    # because locked units never change and no augmentation is applied.
    cache_features: bool = True
    # Those features are kept across races (keyed by checkpoint, units and image set) up to
    # this many MiB, least recently used evicted first; 0 keeps none, recomputing every prefix.
    feature_cache_mb: int = Field(default=256, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # On a GPU, replay each training and evaluation step from a CUDA graph once its batch
    # shape has run twice: a race's small steps are otherwise bound by launching their kernels.
    cuda_graphs: bool = True
    # CPU threads for training; 0 lets torch decide.
    threads: int = Field(default=0, ge=0)


class ServerSettings(BaseModel):
    """Where the server listens, its workers, and whom it answers."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Training workers, so races training at once (HEADSTART_WORKERS, or, as before,
    # HEADSTART_MAX_CONCURRENT_RACES). One on a CPU finishes each race soonest.
    workers: int = Field(default=1, ge=1)
    # Where the workers train: processes on this machine, or actors on a Ray cluster (the ray section).
    backend: Literal["local", "ray"] = "local"
    # A training worker that dies before it is ready this many times in a row is not started
    # again: the cause is not chance (a crashing library, memory too small), and restarting
    # it for ever would only keep a core busy. The server says why it cannot train.
    worker_start_tries: int = Field(default=3, ge=1)
    # A request whose headers have not all arrived this long after its first byte is dropped.
    header_timeout_s: float = Field(default=10.0, gt=0.0)
    # Behind a reverse proxy: the header naming the client's address, trusted only from these peers.
    trusted_proxy_header: str | None = None
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    # Host names this server answers to besides IP addresses, localhost and the class address
    # (guards against DNS rebinding); "*" answers to any.
    allowed_hosts: tuple[str, ...] = ()
    # Origins whose pages may open the websocket besides the server's own (cross-site hijacking).
    allowed_origins: tuple[str, ...] = ()
    # A race whose viewers have all gone is cancelled after this many seconds: long enough
    # for a page to reconnect and re-attach, short enough not to train for nobody.
    orphan_grace_s: float = Field(default=10.0, ge=0.0)
    # A class code nothing was broadcast under for this long is freed, at start-up, for another teacher.
    class_code_days: float = Field(default=7.0, gt=0.0)
    # Pause between the events of a replayed race, so a cached result still visibly races.
    replay_interval_s: float = Field(default=0.05, ge=0.0)
    # The address students open (host or host:port), shown with a class code when the page is
    # opened at 127.0.0.1. Unset, it is worked out from --host: this machine's network address
    # when serving on 0.0.0.0. Set it behind a proxy or in a container, whose own address
    # students cannot reach.
    class_address: str | None = None
    # Origins allowed to frame /embed (CSP frame-ancestors); "*" allows any page, one opened
    # from disk (file://) too.
    frame_ancestors: str = "*"


class QuotaSettings(BaseModel):
    """The server's limits: what the queue, a client, an address and a connection may hold."""

    # Races waiting for a worker, from every address together. Full, it keeps those first in
    # the queue's fair order, dropping the last for a newcomer's race that comes before it.
    max_queue: int = Field(default=32, ge=1)
    # Races a worker holds paused, each having given the worker to a smaller race from another
    # address at an epoch's end (its models stay in the worker's memory); 0 never pauses one.
    max_paused_per_worker: int = Field(default=2, ge=0)
    max_races_per_client: int = Field(default=1, ge=1)
    max_connections: int = Field(default=200, ge=1)
    # The largest websocket message a client may send, checked by the transport before it is read.
    max_message_bytes: int = Field(default=8192, ge=256)
    # Per client address: a class behind one school router shares an address, so this leaves room
    # for a class, while one client can no longer take what every other needs. Where the global
    # limit is reached, the address holding the most gives way to one holding fewer.
    max_connections_per_address: int = Field(default=60, ge=1)
    broadcasts_per_address_per_minute: int = Field(default=6, ge=1)
    # Class codes a client may try per minute (a mistyped code costs one; the page's own look-ups too).
    code_guesses_per_address_per_minute: int = Field(default=20, ge=1)
    # Messages one connection may send per 10 s; past it they are refused, not read.
    messages_per_connection_per_10s: int = Field(default=40, ge=1)
    # Races one connection follows at once (a page follows one).
    max_watched_per_connection: int = Field(default=8, ge=1)
    # Messages waiting to go out to one connection; a client reading slower than that is closed.
    max_outbox_messages: int = Field(default=2000, ge=10)


class RaySettings(BaseModel):
    """The Ray cluster the workers train on, with ``backend`` ray (headstart/workers/ray_actors.py)."""

    # Its address ("auto", "ray://host:10001"), or none to start one here with ``cpus`` CPUs
    # (all of them when unset); each worker asks for this share of a GPU where it has GPUs.
    address: str | None = None
    cpus: int | None = Field(default=None, ge=1)
    gpus_per_worker: float = Field(default=0.25, gt=0.0, le=1.0)


class UploadSettings(BaseModel):
    """Datasets uploaded in the page (``POST /api/datasets``): what one may hold, and how long it is kept.

    Every limit is said in the refusal that meets it (headstart/race/intake.py).
    """

    # Where uploads are written, one folder each (and, while arriving, under its .incoming/): nowhere else.
    upload_dir: Path = (DATA_HOME if INSTALLED else PROJECT_DIR) / "uploads"
    # One request's body, counted as it streams: past it the upload stops with 413.
    max_upload_mb: float = Field(default=300.0, gt=0.0)
    # Bytes one address may upload in an hour, and all addresses together (a class shares an address).
    upload_mb_per_address_per_hour: float = Field(default=1000.0, gt=0.0)
    upload_mb_per_hour: float = Field(default=4000.0, gt=0.0)
    # Uploads checked at once, server-wide; another waits its turn rather than taking more cores.
    max_uploads_at_once: int = Field(default=2, ge=1)
    # Classes, images per class and per dataset; what is past a limit is skipped, and said.
    max_upload_classes: int = Field(default=10, ge=2, le=20)
    max_images_per_class: int = Field(default=2000, ge=6)
    max_images_per_dataset: int = Field(default=5000, ge=12)
    # Bytes of one image file, read whole to check it, and its pixels, read from its header
    # before decoding (decompression bombs): 4096 x 4096.
    max_image_mb: float = Field(default=30.0, gt=0.0)
    max_pixels: int = Field(default=16_777_216, ge=1024)
    # Files in one upload, a zip's members or a request's parts (10,000 tiny files); then the
    # zip's total unpacked size and one member's unpacked-to-packed ratio (zip bombs).
    max_upload_files: int = Field(default=6000, ge=1)
    max_unzipped_mb: float = Field(default=1000.0, gt=0.0)
    max_zip_ratio: float = Field(default=50.0, ge=1.0)
    # Seconds checking one upload's images may take before it is given up.
    max_check_s: float = Field(default=120.0, gt=0.0)
    # An upload no race or visit has used for this long is deleted, unless kept.
    upload_days: float = Field(default=7.0, gt=0.0)
    # Disk all uploads may use; past it the least recently used unkept ones go first.
    max_upload_disk_mb: float = Field(default=4000.0, gt=0.0)
    # Uploads kept past their expiry at once (a teacher's set for the term).
    max_kept_uploads: int = Field(default=20, ge=0)


class PathSettings(BaseModel):
    """Where races are kept, and the shipped sweeps the page's panels draw."""

    database: Path = (DATA_HOME if INSTALLED else PROJECT_DIR) / "headstart.sqlite3"
    # The shipped sweep (`python -m headstart sweep`): its CSV feeds the page's "head start" panel.
    sweep_csv: Path = SWEEP_DIR / "sweep.csv"
    # The trade-off between target and source accuracy (``sweep --keep``), drawn on the page too.
    keep_sweep_csv: Path = SWEEP_DIR / "keep.csv"
    # Accuracy against locked units for every source (``sweep --by locked``), drawn on the page too.
    depth_sweep_csv: Path = SWEEP_DIR / "depth.csv"
    # Final accuracy against trainable parameters for every lane (``sweep --lanes``), drawn on the page too.
    lanes_sweep_csv: Path = SWEEP_DIR / "lanes.csv"
    # Each class's final accuracy at n = 50 (``sweep --classes``): what the classes lesson quotes.
    classes_sweep_csv: Path = SWEEP_DIR / "classes.csv"


SECTIONS: dict[str, type[BaseModel]] = {
    "data": DataSettings,
    "network": NetworkSettings,
    "training": TrainingSettings,
    "server": ServerSettings,
    "quotas": QuotaSettings,
    "ray": RaySettings,
    "paths": PathSettings,
    "uploads": UploadSettings,
}
# Each setting's flat name, as the environment (HEADSTART_WIDTH), the constructor and copies
# have always named it, and where it lives now: its section and its name there.
FLAT: dict[str, tuple[str, str]] = {
    **{name: (section, name) for section, model in SECTIONS.items() for name in model.model_fields},
    **{f"ray_{name}": ("ray", name) for name in RaySettings.model_fields},
    "max_concurrent_races": ("server", "workers"),
}
del FLAT["address"], FLAT["cpus"], FLAT["gpus_per_worker"]  # ray's own names are only ever ray_*


def nested(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with each flat name moved into its section (``{"width": 4}`` → ``{"network": {"width": 4}}``)."""
    out = {name: value for name, value in fields.items() if name not in FLAT}
    for name, value in fields.items():
        if name in FLAT:
            section, field = FLAT[name]
            inner = out.get(section)
            out[section] = {**(inner.model_dump() if isinstance(inner, BaseModel) else inner or {}), field: value}
    return out


class FlatEnvironment(PydanticBaseSettingsSource):
    """Today's flat environment names (``HEADSTART_WIDTH``), read into their sections; a
    section's own name (``HEADSTART_NETWORK__WIDTH``) wins where both are set."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # every value comes from __call__

    def __call__(self) -> dict[str, Any]:
        environ = {name.upper(): value for name, value in os.environ.items()}
        found: dict[str, Any] = {}
        for flat, (section, field) in FLAT.items():
            value = environ.get(f"{PREFIX}{flat.upper()}")
            if value is not None:
                # Lists are written as JSON, as pydantic-settings reads them (HEADSTART_ALLOWED_HOSTS='["a"]').
                decoded = json.loads(value) if value.lstrip()[:1] in ("[", "{") else value
                found.setdefault(section, {}).setdefault(field, decoded)  # HEADSTART_WORKERS before its former name
        return found


class Settings(BaseSettings):
    """Everything configurable, in sections, read once from the environment: ``HEADSTART_<NAME>``
    with a setting's flat name (``HEADSTART_WIDTH``), or ``HEADSTART_<SECTION>__<NAME>``."""

    # Partial updates, so HEADSTART_LIMITS__N__MAX=2000 changes one bound and keeps the rest.
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_nested_delimiter="__", nested_model_default_partial_update=True)

    data: DataSettings = DataSettings()
    network: NetworkSettings = NetworkSettings()
    training: TrainingSettings = TrainingSettings()
    limits: Limits = Limits()
    server: ServerSettings = ServerSettings()
    quotas: QuotaSettings = QuotaSettings()
    ray: RaySettings = RaySettings()
    paths: PathSettings = PathSettings()
    uploads: UploadSettings = UploadSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, FlatEnvironment(settings_cls), dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _flat_names(cls, data: object) -> object:
        return nested(data) if isinstance(data, Mapping) else data

    @model_validator(mode="after")
    def _offered_datasets(self) -> Settings:
        self.limits = offering(self.limits, self.data.datasets)
        return self

    def with_datasets(self, datasets: Mapping[str, Path]) -> Settings:
        """A copy offering ``datasets`` beside those it has."""
        merged = {**self.data.datasets, **datasets}
        copy = self.model_copy(update={"data": self.data.model_copy(update={"datasets": merged})})
        copy.limits = offering(copy.limits, merged)
        return copy

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Settings:
        """A copy with ``update`` applied, flat names (``{"database": path}``) as well as sections."""
        if update:
            update = {
                name: getattr(self, name).model_copy(update=value) if name in SECTIONS and isinstance(value, Mapping) else value
                for name, value in nested(update).items()
            }
        return super().model_copy(update=update, deep=deep)

    def recipe(self) -> dict[str, Any]:
        """Everything but a race's own configuration that decides its numbers."""
        data, network, training = self.data, self.network, self.training
        return {
            "engine_recipe": ENGINE_RECIPE,
            "width": network.width,
            "blocks_per_stage": network.blocks_per_stage,
            "source_classes": list(data.source_classes),
            "test_size": data.test_size,
            "data_seed": data.data_seed,
            "batch_size": training.batch_size,
            "frozen_batch_size": training.frozen_batch_size,
            "weight_decay": training.weight_decay,
            "warmup_epochs": training.warmup_epochs,
            "cosine_decay": training.cosine_decay,
        }

    def recipe_fingerprint(self, checkpoint_sha256: str) -> str:
        """A short hash of the recipe and the checkpoint: part of a stored race's key."""
        text = json.dumps({**self.recipe(), "checkpoint_sha256": checkpoint_sha256}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class SettingsError(ValueError):
    """The environment set something outside what a setting allows: says which variable, and why."""


def _describe(exc: ValidationError) -> str:
    flat = {place: name for name, place in reversed(FLAT.items())}  # the first flat name of each
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        place = (loc[0], loc[1]) if len(loc) > 1 else None
        parts = [flat[place], *loc[2:]] if place in flat else loc
        name = PREFIX + "__".join(parts).upper()
        given = f" (got {err['input']!r})" if err.get("type") != "missing" and not isinstance(err.get("input"), dict) else ""
        lines.append(f"{name}: {err['msg'].removeprefix('Value error, ')}{given}")
    return "invalid setting" + ("s" if len(lines) > 1 else "") + ": " + "; ".join(lines)


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
