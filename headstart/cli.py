"""The command line: ``headstart serve | race | sweep | bake | pretrain | weights`` (or ``python -m headstart``).

Option ranges and defaults come from the settings object, as for the API and the page.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from headstart.errors import SetupError
from headstart.race import bodies, datasets, lessons, uploads
from headstart.race.events import KEEPS, RaceConfig, race_fields
from headstart.race.sources import DEFAULT, SOURCES, checkpoint_path
from headstart.race.strategies import EXTRAS
from headstart.settings import BUILT_IN_DATASET, DATASET_NAME, FORMER_NAMES, Settings, SettingsError, get_settings


def _race_options(parser: argparse.ArgumentParser, settings: Settings) -> None:
    for spec in race_fields(settings.limits):
        # A field's former names stay accepted: course pages and scripts already use them.
        flags = ["--" + name.replace("_", "-") for name in (spec.name, *spec.former)]
        if spec.kind == "set":
            assert spec.options is not None
            allowed = ", ".join(o.value for o in spec.options)
            parser.add_argument(
                *flags, dest=spec.name, default=None, metavar="A,B", help=f"{spec.help}: any of {allowed} (default none)"
            )
            continue
        if spec.name == "dataset":
            offered = ", ".join(o.value for o in spec.options or ())
            parser.add_argument(
                *flags,
                dest=spec.name,
                default=None,
                metavar="NAME|FOLDER",
                help=f"{spec.help}: one of {offered}, or a folder (default {spec.default})",
            )
            continue
        if spec.options is not None:
            choices = [o.value for o in spec.options]
            parser.add_argument(
                *flags, dest=spec.name, choices=choices, default=None, help=f"{spec.help} (default {spec.default})"
            )
            continue
        parser.add_argument(
            *flags,
            dest=spec.name,
            type=int if spec.kind == "int" else float,
            default=None,
            help=f"{spec.help}, {spec.min}..{spec.max} (default {spec.default})",
        )


def _positive(text: str) -> int:
    return _whole(text, 1, None, "a whole number of at least 1")


def _port(text: str) -> int:
    return _whole(text, 1, 65535, "a TCP port, a whole number from 1 to 65535")


def _whole(text: str, low: int, high: int | None, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"need {what}, got {text!r}")
    return value


def _parser(settings: Settings) -> argparse.ArgumentParser:
    # As it was called: the `headstart` command an installed wheel adds, or `python -m headstart`.
    prog = "python -m headstart" if Path(sys.argv[0]).name == "__main__.py" else Path(sys.argv[0]).name
    parser = argparse.ArgumentParser(prog=prog, description="Headstart: transfer learning, raced live.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the page and the API")
    serve.add_argument("--host", default=settings.server.host)
    serve.add_argument(
        "--port", type=_port, default=settings.server.port, help=f"TCP port, 1..65535 (default {settings.server.port})"
    )
    serve.add_argument("--preload", type=Path, default=None, help="a bake's folder: its races replay instead of training")
    serve.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="offer a folder of images, one subfolder per class, under NAME (repeatable; also HEADSTART_DATASETS)",
    )
    serve.set_defaults(subparser=serve)
    race = sub.add_parser("race", help="run one race headless, printing JSON Lines events")
    _race_options(race, settings)
    race.set_defaults(subparser=race)  # so a bad value is reported with this command's usage
    sweep = sub.add_parser("sweep", help="race across log-spaced n and seeds; write CSV, PNG and SVG")
    sweep.add_argument("--n", type=int, nargs="+", default=None, help="target sizes (default: log-spaced over the n range)")
    sweep.add_argument("--seeds", type=_positive, default=3, help="seeds per size (default 3)")
    sweep.add_argument("--no-scan", action="store_true", help="skip the scan of fine-tune's locked units at the default n")
    sweep.add_argument(
        "--source", choices=list(SOURCES), default=DEFAULT, help=f"the body's source, {', '.join(SOURCES)} (default {DEFAULT})"
    )
    sweep.add_argument(
        "--body",
        choices=list(bodies.BODIES),
        default=bodies.DEFAULT,
        help=f"the network every race trains (default {bodies.DEFAULT}); another writes sweep-NAME.csv",
    )
    sweep.add_argument(
        "--by",
        type=lambda text: FORMER_NAMES.get(text, text),
        choices=["n", "locked"],
        default="n",
        help="n: the head start across data sizes (default); locked: accuracy against locked units, every source, "
        "n = 50 and 1000 unless --n",
    )
    sweep.add_argument(
        "--keep",
        action="store_true",
        help="instead: fine-tune at k = 0 across L2-SP and EWC strengths, target against source accuracy",
    )
    sweep.add_argument(
        "--lanes",
        action="store_true",
        help="instead: every lane (gradual, LoRA at each rank, fine-tune at each k), accuracy against trainable parameters",
    )
    sweep.add_argument(
        "--classes",
        action="store_true",
        help="instead: the default race at n = 50 over the seeds, per-class accuracy and the confusions fine-tune removes",
    )
    sweep.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"CSV path (default {settings.paths.sweep_csv}, named for a source; with --keep, --by locked, --lanes or --classes, "
        "the sweep's own CSV beside it)",
    )
    sweep.add_argument("--fresh", action="store_true", help="discard the CSV's races instead of resuming")
    sweep.set_defaults(subparser=sweep)
    bake = sub.add_parser("bake", help="train a grid of races into files, to replay without training")
    bake.add_argument("--out", type=Path, required=True, help="folder to write the bake to (resumed if it holds one)")
    bake.add_argument("--n", type=int, nargs="+", default=None, help="target sizes (default: the data slider's round stops)")
    bake.add_argument("--locked", "--frozen", type=int, nargs="+", default=None, help="units fine-tune locks (default: every k)")
    bake.add_argument("--seeds", type=_positive, default=3, help="seeds per configuration (default 3)")
    bake.add_argument("--epochs", type=_positive, default=None, help="epochs of every race (default: the default)")
    bake.add_argument("--source", nargs="+", choices=list(SOURCES), default=[DEFAULT], help=f"bodies (default {DEFAULT})")
    bake.add_argument("--keep", nargs="+", choices=list(KEEPS), default=["none"], help="fine-tune's regularisers (default none)")
    bake.add_argument(
        "--dataset", nargs="+", default=[BUILT_IN_DATASET], metavar="NAME|FOLDER", help=f"datasets (default {BUILT_IN_DATASET})"
    )
    bake.add_argument("--body", nargs="+", choices=list(bodies.BODIES), default=[bodies.DEFAULT], help="bodies (default tiny)")
    bake.add_argument(
        "--extra", nargs="+", default=["none"], metavar="LANES", help="sets of extra lanes, each none or A,B (default none)"
    )
    bake.add_argument(
        "--lessons", nargs="*", choices=list(lessons.BY_ID), default=None, metavar="ID",
        help=f"also each guided lesson's race at every seed (bare: all of them: {', '.join(lessons.BY_ID)})",
    )  # fmt: skip
    bake.set_defaults(subparser=bake)
    pre = sub.add_parser("pretrain", help="pretrain the body on the source classes")
    pre.add_argument("--epochs", type=_positive, default=4)
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument(
        "--source", choices=list(SOURCES), default=DEFAULT, help=f"what to pretrain on: {', '.join(SOURCES)} (default {DEFAULT})"
    )
    pre.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"weights path (default beside {settings.network.checkpoint}, named for the source)",
    )
    pre.add_argument("--fisher-only", action="store_true", help="only recompute the source task's Fisher (EWC's)")
    weights = sub.add_parser(
        "weights", help="fetch an ImageNet body's weights with torchvision's own loader (needs the internet)"
    )
    weights.add_argument("body", nargs="+", choices=[b for b, spec in bodies.BODIES.items() if spec.url])
    weights.set_defaults(subparser=weights)
    return parser


def _summary_table(done: dict[str, Any]) -> str:
    lines = [f"{'strategy':<10} {'final acc':>9} {'best acc':>9} {'source acc':>10} {'compute s':>10}"]
    for name, s in done["summary"].items():
        source = "–" if s["final_source_acc"] is None else f"{s['final_source_acc']:.3f}"
        lines.append(f"{name:<10} {s['final_test_acc']:>9.3f} {s['best_test_acc']:>9.3f} {source:>10} {s['compute_s']:>10.2f}")
    lines.append(f"wall {done['wall_s']:.2f} s")
    return "\n".join(lines)


def _named_folders(pairs: list[str], parser: argparse.ArgumentParser) -> dict[str, Path]:
    """``serve --dataset leaves=/path/to/leaves``, each folder checked at once: a server does not
    start on a dataset it could not train."""
    found = {}
    for pair in pairs:
        name, sep, folder = pair.partition("=")
        if not sep or not DATASET_NAME.fullmatch(name) or name == BUILT_IN_DATASET:
            parser.error(
                f"argument --dataset: {pair!r}: write NAME=FOLDER, NAME 1-32 lower-case letters, digits, '-' or '_', "
                f"other than {BUILT_IN_DATASET!r}"
            )
        found[name] = Path(folder).expanduser()
    return found


def _check_datasets(settings: Settings) -> None:
    """Scan every dataset the settings offer, naming what was ignored; raises ``DatasetError``."""
    log = logging.getLogger(__name__)
    for name, scanned in datasets.scan_all(settings).items():
        log.info("dataset %s: %s", *scanned.describe())
        for line in scanned.ignored[:10]:
            log.warning("dataset %s: ignored %s", name, line)


def _race_dataset(text: str | None, parser: argparse.ArgumentParser, settings: Settings) -> tuple[str | None, Settings]:
    """``--dataset``: a name the settings offer, or a folder, offered under its own name."""
    if text is None or text in settings.limits.dataset.options or uploads.locate(settings, text):
        return text, settings  # one the settings offer, or an upload's id
    folder = Path(text).expanduser()
    if not folder.is_dir():
        offered = ", ".join(settings.limits.dataset.options)
        parser.error(f"argument --dataset: {text!r} is neither a dataset here ({offered}), an upload's id, nor a folder")
    name = re.sub(r"[^a-z0-9_-]+", "-", folder.resolve().name.lower()).strip("-")[:32] or "images"
    name = "images" if name == BUILT_IN_DATASET else name
    return name, settings.with_datasets({name: folder})


def _race(args: argparse.Namespace, parser: argparse.ArgumentParser, settings: Settings) -> int:
    from headstart.race.events import beyond_data
    from headstart.race.fashion import DataError
    from headstart.training.engine import Resources, run_race, warm_up

    args.dataset, settings = _race_dataset(args.dataset, parser, settings)
    given = {k: getattr(args, k) for k in RaceConfig.model_fields if getattr(args, k) is not None}
    try:
        config = RaceConfig.validate_with(given, settings.limits)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = f"argument --{str(err['loc'][0]).replace('_', '-')}: " if err["loc"] else ""
        parser.error(where + err["msg"].removeprefix("Value error, "))
    missing = bodies.unavailable(config.body, settings)
    if missing:
        parser.error(f"argument --body: {missing}")
    res = Resources.load(settings)
    try:
        task = res.task(config.dataset, config.body)
    except (DataError, datasets.DatasetError) as exc:  # a folder that cannot be a dataset, or whose images will not decode
        parser.error(f"argument --dataset: {exc}")
    if config.n > task.capacity:  # a smaller folder than the limits were set for
        parser.error(f"argument --n: {beyond_data(config.n, task.capacity, len(task.classes))}")
    if task.skipped:
        print(f"skipped {len(task.skipped)} file(s) that could not be decoded:", file=sys.stderr)
        print("\n".join(f"  {line}" for line in task.skipped), file=sys.stderr)
    warm_up(res, config)  # its compute clocks, like the page's, leave out the process's first-call costs
    for event in run_race(config, res):
        sys.stdout.write(event.model_dump_json() + "\n")
        sys.stdout.flush()
        if event.type == "done":
            print(_summary_table(event.model_dump()), file=sys.stderr)
    return 0


def _sweep(args: argparse.Namespace, parser: argparse.ArgumentParser, settings: Settings) -> int:
    from tqdm import tqdm

    from headstart.lessons import adapters, classes, depth, distance, forgetting, keeping, scenario, sweep

    limits = settings.limits
    bad = [n for n in args.n or () if not limits.n.min <= n <= limits.n.max]
    if bad:
        parser.error(f"argument --n: every size must be between {limits.n.min} and {limits.n.max}, got {bad}")

    def progress(todo, total):  # type: ignore[no-untyped-def]
        bar = tqdm(todo, total=total, initial=total - len(todo), unit="race", dynamic_ncols=True)
        for config in bar:
            what = f"{config.keep} {config.keep_strength:g}" if config.keep != "none" else f"k={config.locked} {config.source}"
            what += f" +{'+'.join(config.extra)} r{config.lora_rank}" if config.extra else ""
            bar.set_postfix_str(f"n={config.n} seed={config.seed} {what} body×{config.body_lr_ratio:g}")
            yield config

    if args.classes:
        found = classes.measure(settings, seeds=range(args.seeds), n=args.n[0] if args.n else classes.N)
        out = args.out or settings.paths.classes_sweep_csv
        classes.write_csv(found, out)
        print(f"wrote {out} ({len(found.rows)} rows)")
        print(classes.table(found))
        return 0
    if args.by == "locked":
        out = args.out or settings.paths.depth_sweep_csv
        by_depth = depth.default_plan(limits, seeds=args.seeds, ns=args.n)
        depths = depth.run(by_depth, settings, out, args.fresh, progress)
        print(f"wrote {out} and its .png, .svg ({len(depths.rows)} epoch rows)")
        print(depth.table(depth.summarise(depths.rows)))
        return 0
    if args.lanes:
        out = args.out or settings.paths.lanes_sweep_csv
        by_lane = adapters.default_plan(limits, seeds=args.seeds)
        lanes = adapters.run(by_lane, settings, out, args.fresh, progress)
        points = adapters.summarise(lanes.rows, by_lane.base.locked, by_lane.base.lora_rank)
        print(f"wrote {out} and its .png, .svg ({len(lanes.rows)} epoch rows)")
        print(adapters.table(points) + "\n")
        print(scenario.table(adapters.evaluate(points, by_lane.base.locked)))
        return 0
    if args.keep:
        out = args.out or settings.paths.keep_sweep_csv
        kept = keeping.run(keeping.default_plan(limits, seeds=args.seeds), settings, out, args.fresh, progress)
        print(f"wrote {out} and its .png, .svg ({len(kept.rows)} epoch rows)")
        print(keeping.table(keeping.summarise(kept.rows)) + "\n")
        print(scenario.table(forgetting.evaluate(kept.rows, limits.body_lr_ratio.default, limits.keep_strength.default)))
        return 0
    if missing := bodies.unavailable(args.body, settings):
        parser.error(f"argument --body: {missing}")
    imagenet = args.body != bodies.DEFAULT
    if imagenet and args.source != DEFAULT:
        parser.error("argument --source: an ImageNet body was pretrained on ImageNet; --source applies to the built-in body only")
    out = args.out or checkpoint_path(settings.paths.sweep_csv, args.body if imagenet else args.source)
    plan = sweep.default_plan(limits, seeds=args.seeds, ns=args.n, scan=not args.no_scan, source=args.source, body=args.body)
    results = sweep.run(plan, settings, out, fresh=args.fresh, progress=progress)
    print(f"wrote {out} and its .png, .svg ({len(results.rows)} epoch rows)")
    print(sweep.accuracy_table(results.rows, plan.base.locked) + "\n")
    if imagenet:
        return 0
    if args.source == DEFAULT:  # the default scenario's lesson
        print(scenario.table(scenario.evaluate(results.rows, plan.base.locked, plan.base.n)))
    # The distance lesson, once every source has its sweep beside this one.
    paths = {s: checkpoint_path(settings.paths.sweep_csv, s) for s in SOURCES}
    if args.out is None and all(p.is_file() for p in paths.values()):
        by_source: dict[str, list[dict[str, Any]]] = {s: sweep.read_rows(p) for s, p in paths.items()}
        print("\n" + scenario.table(distance.evaluate(by_source, plan.base.locked)))
    return 0


def _lanes(text: str, parser: argparse.ArgumentParser) -> tuple[str, ...]:
    """One set of extra lanes as --extra writes it: "none", "lora" or "gradual,lora"."""
    asked = () if text == "none" else tuple(part.strip() for part in text.split(","))
    unknown = [name for name in asked if name not in EXTRAS]
    if unknown:
        parser.error(f"argument --extra: each set is none or lanes among {', '.join(EXTRAS)}, not {', '.join(unknown)}")
    return tuple(name for name in EXTRAS if name in asked)


def _bake(args: argparse.Namespace, parser: argparse.ArgumentParser, settings: Settings) -> int:
    from tqdm import tqdm

    from headstart.site import bake

    names = []
    for text in args.dataset:
        name, settings = _race_dataset(text, parser, settings)
        names.append(name or BUILT_IN_DATASET)
    for body in args.body:
        if missing := bodies.unavailable(body, settings):
            parser.error(f"argument --body: {missing}")
    limits, grid = settings.limits, bake.default_grid(settings)
    for name, values in (("n", args.n), ("locked", args.locked)):
        allowed = getattr(limits, name)
        bad = [v for v in values or () if not allowed.min <= v <= allowed.max]
        if bad:
            parser.error(f"argument --{name}: every value must be between {allowed.min} and {allowed.max}, got {bad}")
    if args.epochs is not None and not limits.epochs.min <= args.epochs <= limits.epochs.max:
        parser.error(f"argument --epochs: epochs must be between {limits.epochs.min} and {limits.epochs.max}, got {args.epochs}")
    # Bare --lessons: every lesson this machine can race; one named whose body it cannot is refused.
    why_not = {i: bodies.unavailable(lesson.body, settings) for i, lesson in lessons.BY_ID.items()}
    for lesson_id in args.lessons or ():
        if why_not[lesson_id]:
            parser.error(f"argument --lessons: {lesson_id}: {why_not[lesson_id]}")
    grid = bake.Grid(
        n=tuple(args.n or grid.n),
        locked=tuple(args.locked if args.locked is not None else grid.locked),
        seeds=tuple(range(args.seeds)),
        epochs=args.epochs or grid.epochs,
        sources=tuple(dict.fromkeys(args.source)),
        keeps=tuple(dict.fromkeys(args.keep)),
        extras=tuple(dict.fromkeys(_lanes(text, parser) for text in args.extra)),
        datasets=tuple(dict.fromkeys(names)),
        bodies=tuple(dict.fromkeys(args.body)),
        lessons=tuple([i for i, why in why_not.items() if not why] if args.lessons == [] else dict.fromkeys(args.lessons or ())),
    )

    def progress(todo, total):  # type: ignore[no-untyped-def]
        bar = tqdm(todo, total=total, initial=total - len(todo), unit="race", dynamic_ncols=True)
        for config in bar:
            lanes = "+".join(config.extra) or "three"
            bar.set_postfix_str(f"{config.source} {config.keep} {lanes} n={config.n} k={config.locked} seed={config.seed}")
            yield config

    written = bake.bake(settings, grid, args.out, progress)
    size = sum(p.stat().st_size for p in written)
    whole = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    per_race = size / max(1, len(written)) / 1e3
    print(f"baked {len(written)} races into {args.out}: {per_race:.1f} kB a race, {whole / 1e6:.2f} MB with the site")
    print(f"serve it with `python -m http.server -d {args.out}`, or upload the folder to any static host")
    return 0


def _pretrain(args: argparse.Namespace, _: argparse.ArgumentParser, settings: Settings) -> int:
    from headstart.training.pretrain import pretrain, write_fisher

    out = args.out or checkpoint_path(settings.network.checkpoint, args.source)
    if args.fisher_only:
        card = write_fisher(settings, out, source=args.source)
    else:
        card = pretrain(settings, out, epochs=args.epochs, seed=args.seed, source=args.source)
    print(json.dumps(card.__dict__, indent=2))
    return 0


def _weights(args: argparse.Namespace, _: argparse.ArgumentParser, settings: Settings) -> int:
    """Fetch each body's file where torch.hub keeps it (or the configured folder), by torchvision's loader."""
    import torch.hub

    for body in args.body:
        spec, folder = bodies.BODIES[body], bodies.weights_dir(settings)
        assert spec.url is not None and spec.weights is not None
        if (folder / spec.weights).is_file():
            print(f"{body}: {folder / spec.weights} is already here")
            continue
        try:
            torch.hub.load_state_dict_from_url(spec.url, model_dir=str(folder), progress=True, check_hash=True)
        except OSError as exc:  # no network: URLError is an OSError
            raise SetupError(
                f"{body}: could not fetch {spec.url} ({exc}); on a machine that is online, download it and put "
                f"{spec.weights} in {folder}"
            ) from exc
        print(f"{body}: {folder / spec.weights}")
    return 0


def _serve(args: argparse.Namespace, parser: argparse.ArgumentParser, settings: Settings) -> int:
    import signal

    import uvicorn

    from headstart.serving.app import create_app, redact_client_ids
    from headstart.serving.guard import header_timeout
    from headstart.serving.lan import listen

    settings = settings.with_datasets(_named_folders(args.dataset, parser))
    _check_datasets(settings)  # a folder that cannot be a dataset stops the server here, saying why
    sockets = listen(args.host, args.port)  # first: a port in use is named before anything loads
    if args.preload is not None:
        _preload(args.preload, settings)
    # The app knows where it listens: the page shows students an address they can reach.
    app = create_app(settings.model_copy(update={"host": args.host, "port": args.port}))
    # SIGTERM (docker stop, systemd) ends the process as Ctrl-C does, so exit handlers release
    # the worker's resources; status 0, a stop asked for and done (docs/reliability.md).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    # The transport refuses a frame past the message limit before reading it whole.
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        ws_max_size=settings.quotas.max_message_bytes,
        http=header_timeout(settings.server.header_timeout_s),
    )
    server = uvicorn.Server(config)
    redact_client_ids()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn has shut down in order, as asked
        server.run(sockets=sockets)
    return 0 if server.started else 1


def _preload(folder: Path, settings: Settings) -> None:
    from headstart.site import bake
    from headstart.store import Store

    store = Store(settings.paths.database)
    try:
        print(f"preloaded {bake.preload(folder, store)} races from {folder}", file=sys.stderr)
    finally:
        store.close()


COMMANDS = {"race": _race, "sweep": _sweep, "bake": _bake, "pretrain": _pretrain, "serve": _serve, "weights": _weights}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parser = _parser(settings)
    args = parser.parse_args(argv)
    if settings.training.threads and args.command != "serve":  # the server's worker sets its own; the web process has no torch
        import torch

        torch.set_num_threads(settings.training.threads)
    try:
        return COMMANDS[args.command](args, getattr(args, "subparser", parser), settings)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
