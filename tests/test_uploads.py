"""Uploaded datasets: every bad input named and bounded, the library's expiry and disk cap, and
the endpoint's limits, from the first byte to a race on the upload."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from headstart.race import intake, uploads
from headstart.serving.app import create_app
from headstart.serving.quotas import Budget
from headstart.settings import Settings, UploadSettings
from headstart.tools import payloads

LIMITS = UploadSettings()


def check(tmp_path: Path, zipped: bytes, limits: UploadSettings = LIMITS) -> intake.Checked:
    taking = intake.Intake(limits, tmp_path / "staging")
    with taking.part(intake.ZIP_FIELD, "up.zip") as out:
        out.write(zipped)
    return taking.check()


def reasons(checked: intake.Checked) -> dict[str, str]:
    return {s["file"]: s["reason"] for s in checked.skipped}


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return out.getvalue()


def good(count: int = 6, shape: str = "circle", seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [payloads.shape_image(shape, rng) for _ in range(count)]


# --- the validator ------------------------------------------------------------------------------


def test_a_zip_of_a_folder_becomes_one_folder_per_class_under_names_made_here(tmp_path: Path) -> None:
    checked = check(tmp_path, payloads.class_zip(per_class=10))
    assert checked.classes == {"circle": 10, "square": 10, "triangle": 10} and not checked.skipped
    out = tmp_path / "staging" / "dataset"
    assert sorted(p.name for p in out.iterdir()) == ["circle", "square", "triangle"]
    assert sorted(p.name for p in (out / "circle").iterdir())[:3] == ["00000.jpg", "00001.jpg", "00002.png"]


def test_names_that_climb_out_are_refused_and_a_macs_leftovers_ignored(tmp_path: Path) -> None:
    files = {f"a/{i}.jpg": b for i, b in enumerate(good())} | {f"b/{i}.jpg": b for i, b in enumerate(good(seed=1))}
    files |= {"__MACOSX/a/._0.jpg": b"mac", "a/._1.jpg": b"mac", "a/.DS_Store": b"x", "loose.jpg": good(1)[0]}
    traversal = zipfile.ZipFile(io.BytesIO(payloads.traversal_zip()))
    files |= {info.filename: traversal.read(info) for info in traversal.infolist()}
    checked = check(tmp_path, zipped(files))
    said = reasons(checked)
    assert checked.classes == {"a": 6, "b": 6}
    assert said["../../escaped.jpg"] == "refused: '..' in its path"
    assert said["/etc/escaped.jpg"] == said["C:/escaped.jpg"] == "refused: an absolute path"
    assert said["a\\..\\..\\escaped.jpg"].startswith("refused: a backslash")
    assert said["ok/../../escaped.jpg"] == "refused: '..' in its path"
    assert said["loose.jpg"].startswith("not in a class folder")
    assert not any("MACOSX" in name or "._" in name or "DS_Store" in name for name in said)
    assert not list(tmp_path.rglob("escaped.jpg"))


def test_other_files_renamed_png_and_other_formats_are_named_and_skipped(tmp_path: Path) -> None:
    files = {f"a/{i}.jpg": b for i, b in enumerate(good())} | {f"b/{i}.jpg": b for i, b in enumerate(good(seed=1))}
    fakes = zipfile.ZipFile(io.BytesIO(payloads.renamed_zip(per_class=4)))
    files |= {info.filename: fakes.read(info) for info in fakes.infolist()}
    files["b/truncated.jpg"] = good(1)[0][:200]
    said = reasons(check(tmp_path, zipped(files)))
    assert said["c0/0.png"] == "not a JPEG, PNG or WebP image"
    assert said["c0/2.png"] == "a PDF file; accepted: JPEG, PNG or WebP"
    assert said["c0/3.png"] == "a GIF file; accepted: JPEG, PNG or WebP"
    assert said["b/truncated.jpg"].startswith("damaged: it cannot be decoded")


def test_a_pixel_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    files = {f"a/{i}.jpg": b for i, b in enumerate(good())} | {f"b/{i}.jpg": b for i, b in enumerate(good(seed=1))}
    files["a/bomb.png"] = payloads.pixel_bomb(60_000)
    files["a/large.png"] = payloads.pixel_bomb(5_000)  # past this server's limit, within Pillow's
    said = reasons(check(tmp_path, zipped(files)))
    assert said["a/bomb.png"] == "3,600,000,000 pixels, more than the 16,777,216 allowed (max_pixels)"
    assert said["a/large.png"] == "5,000×5,000 pixels, more than the 16,777,216 allowed (max_pixels)"


def test_an_image_file_past_its_bytes_is_skipped_before_it_is_read(tmp_path: Path) -> None:
    files = {f"a/{i}.jpg": b for i, b in enumerate(good())} | {f"b/{i}.jpg": b for i, b in enumerate(good(seed=1))}
    rng = np.random.default_rng(0)
    files["a/photo.jpg"] = payloads.noise_jpeg(rng, kilobytes=100)
    said = reasons(check(tmp_path, zipped(files), LIMITS.model_copy(update={"max_image_mb": 0.05})))
    assert said["a/photo.jpg"].endswith("MB; an image file may be at most 0.05 MB (max_image_mb)")


def test_a_zip_bomb_is_refused_by_its_ratio_and_by_its_unpacked_size(tmp_path: Path) -> None:
    bomb = zipfile.ZipFile(io.BytesIO(payloads.zip_bomb(60)))
    files = {f"a/{i}.jpg": b for i, b in enumerate(good())} | {f"b/{i}.jpg": b for i, b in enumerate(good(seed=1))}
    with_bomb = io.BytesIO(zipped(files))
    with zipfile.ZipFile(with_bomb, "a") as zf:
        info = bomb.infolist()[0]
        zf.writestr(info, bomb.open(info).read(), compress_type=zipfile.ZIP_DEFLATED)
    said = reasons(check(tmp_path / "ratio", with_bomb.getvalue()))
    assert "to 1, more than 50 (max_zip_ratio; a zip bomb?)" in said["bomb/zeros.png"]
    with pytest.raises(intake.Rejected, match=r"unpacks to 60 MB; at most 50 MB \(max_unzipped_mb\)") as refused:
        check(tmp_path / "size", with_bomb.getvalue(), LIMITS.model_copy(update={"max_unzipped_mb": 50}))
    assert refused.value.status == 413


def test_a_member_that_unpacks_past_its_header_is_cut_off_and_skipped(tmp_path: Path) -> None:
    files = {f"a/{i}.jpg": b for i, b in enumerate(good(7))} | {f"b/{i}.jpg": b for i, b in enumerate(good(seed=1))}
    raw = bytearray(zipped(files))
    # Shrink the central directory's unpacked size of the first member: the header lies.
    at = raw.find(b"PK\x01\x02")
    raw[at + 24 : at + 28] = (10).to_bytes(4, "little")
    checked = check(tmp_path, bytes(raw))
    assert checked.classes == {"a": 6, "b": 6}
    assert reasons(checked)["a/0.jpg"].startswith("cannot be unpacked (Bad CRC-32")


def test_ten_thousand_tiny_files_are_refused_before_one_is_read(tmp_path: Path) -> None:
    with pytest.raises(intake.Rejected, match=r"10,000 members; an upload holds at most 6,000 \(max_upload_files\)"):
        check(tmp_path, payloads.many_files(10_000))


def test_classes_too_small_too_many_or_too_few_are_said_with_the_limit(tmp_path: Path) -> None:
    files = {f"a/{i}.jpg": b for i, b in enumerate(good())} | {f"b/{i}.jpg": b for i, b in enumerate(good(seed=1))}
    files["one/0.jpg"] = good(1)[0]  # a one-image class trains on nothing: left out, and said
    checked = check(tmp_path / "small", zipped(files))
    assert checked.classes == {"a": 6, "b": 6}
    assert reasons(checked)["one/"] == "1 image; a class needs at least 6 (two to test on, four to train on)"
    with pytest.raises(intake.Rejected, match=r"needs at least 2 classes .* this upload has a \(6\)"):
        check(tmp_path / "few", zipped({f"a/{i}.jpg": b for i, b in enumerate(good())}))
    eleven = {f"c{c}/{i}.jpg": b for c in range(11) for i, b in enumerate(good(6, seed=c))}
    with pytest.raises(intake.Rejected, match=r"11 classes .* at most 10 \(max_upload_classes\)"):
        check(tmp_path / "many", zipped(eleven))


def test_images_past_a_class_or_a_dataset_limit_are_skipped_and_said(tmp_path: Path) -> None:
    limits = LIMITS.model_copy(update={"max_images_per_class": 8, "max_images_per_dataset": 14})
    checked = check(tmp_path, payloads.class_zip(per_class=10), limits)
    assert checked.classes == {"circle": 8, "square": 6} and checked.skipped_count == 16
    said = reasons(checked)
    assert said["shapes/circle/008.png"] == "past the 8 images a class may hold (max_images_per_class)"
    assert said["shapes/square/006.jpg"] == "past the 14 images a dataset may hold (max_images_per_dataset)"


def test_each_classs_files_sent_as_parts_become_the_same_dataset(tmp_path: Path) -> None:
    taking = intake.Intake(LIMITS, tmp_path / "staging")
    for name, images in (("oak", good()), ("maple", good(seed=1)), ("bad/name", good(seed=2))):
        for i, data in enumerate(images):
            with taking.part(name, f"{i}.jpg") as out:
                out.write(data)
    checked = taking.check()
    assert checked.classes == {"maple": 6, "oak": 6}
    assert reasons(checked)["bad/name/0.jpg"].startswith('a class name must not start with "." or hold /')
    with pytest.raises(intake.Rejected, match="not both"):
        taking.part(intake.ZIP_FIELD, "x.zip")


def test_checking_past_its_time_is_given_up(tmp_path: Path) -> None:
    limits = LIMITS.model_copy(update={"max_check_s": 0.01})
    with pytest.raises(intake.Rejected, match=r"longer than 0.01 s \(max_check_s\)"):
        taking = intake.Intake(limits, tmp_path / "staging")
        with taking.part(intake.ZIP_FIELD, "up.zip") as out:
            out.write(payloads.class_zip(per_class=10))
        taking.check(started=0.0)


# --- the library ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def add(library: uploads.Uploads, tmp_path: Path, name: str, per_class: int = 10) -> uploads.Manifest:
    checked = check(tmp_path / name, payloads.class_zip(per_class=per_class))
    return library.add(tmp_path / name / "staging" / "dataset", checked, name)


def test_an_upload_unused_for_its_days_expires_unless_kept(tiny: Settings, tmp_path: Path) -> None:
    clock = Clock()
    settings = tiny.model_copy(update={"upload_dir": tmp_path / "up", "upload_days": 1.0})
    library = uploads.Uploads(settings, clock=clock)
    used, unused, kept = (add(library, tmp_path, name) for name in ("used", "unused", "kept"))
    assert uploads.UPLOAD_ID.fullmatch(used.id) and len({used.id, unused.id, kept.id}) == 3
    library.keep(kept.id, True)
    clock.now += 0.9 * 86400
    library.touch(used.id)
    clock.now += 0.2 * 86400
    assert library.sweep() == [unused.id]
    assert not (tmp_path / "up" / unused.id).exists() and (tmp_path / "up" / kept.id).is_dir()
    with pytest.raises(uploads.UploadError, match="expired after 1 days unused"):
        library.get(unused.id)
    # A restarted server finds what was kept, and clears what was cut off while arriving.
    library.staging()
    again = uploads.Uploads(settings, clock=clock)
    assert again.get(kept.id).kept and again.get(used.id).title == "used"
    assert not (tmp_path / "up" / uploads.INCOMING).exists()


def test_past_the_disk_cap_the_least_recently_used_unkept_upload_goes_first(tiny: Settings, tmp_path: Path) -> None:
    clock = Clock()
    size = len(payloads.class_zip(per_class=10))
    settings = tiny.model_copy(update={"upload_dir": tmp_path / "up", "max_upload_disk_mb": 2.5 * size / intake.MB})
    library = uploads.Uploads(settings, clock=clock)
    first = add(library, tmp_path, "first")
    clock.now += 1
    second = add(library, tmp_path, "second")
    clock.now += 1
    library.touch(first.id)  # used since: the second is now the least recently used
    clock.now += 1
    third = add(library, tmp_path, "third")
    with pytest.raises(uploads.UploadError):
        library.get(second.id)
    assert library.get(first.id) and library.get(third.id)
    library.keep(first.id, True)
    library.keep(third.id, True)
    with pytest.raises(uploads.UploadError, match=r"of the .* MB allowed \(max_upload_disk_mb\)") as full:
        add(library, tmp_path, "fourth")
    assert full.value.status == 507
    limited = uploads.Uploads(settings.model_copy(update={"max_kept_uploads": 1}), clock=clock)
    assert limited.get(first.id).kept
    with pytest.raises(uploads.UploadError, match=r"1 uploads are kept already, .* \(max_kept_uploads\)"):
        limited.keep(third.id, True)


def test_a_budget_counts_amounts_per_key_over_its_window() -> None:
    clock = Clock()
    budget = Budget(100, 3600, clock=clock)
    assert budget.spend("a", 60) and not budget.spend("a", 50) and budget.spend("b", 100)
    assert budget.left("a") == 40
    clock.now += 3600
    assert budget.spend("a", 100)


# --- the endpoint ------------------------------------------------------------------------------


@pytest.fixture
def server(tiny: Settings, tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:
    settings = tiny.model_copy(
        update={"upload_dir": tmp_path / "uploads", "database": tmp_path / "races.sqlite3", "replay_interval_s": 0.0}
    )
    with TestClient(create_app(settings)) as client:
        yield client, settings


def post_zip(client: TestClient, data: bytes, name: str = "shapes.zip", **headers: str):  # type: ignore[no-untyped-def]
    return client.post("/api/datasets", files={"file": (name, data, "application/zip")}, headers=headers)


def test_an_uploaded_zip_races_and_its_id_finds_it_but_no_listing_does(server: tuple[TestClient, Settings]) -> None:
    client, settings = server
    answer = post_zip(client, payloads.class_zip(per_class=30))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    upload_id = body["id"]
    assert body["title"] == "shapes" and body["images"] == 90 and body["capacity"] == 72
    assert [c["name"] for c in body["classes"]] == ["circle", "square", "triangle"]
    assert client.get(f"/api/datasets/{upload_id}").json()["classes"] == body["classes"]
    assert upload_id not in client.get("/api/config").text  # only a link that carries the id finds it
    examples = client.get("/api/examples", params={"dataset": upload_id}).json()
    first = examples["target"]["classes"][0]["images"][0]
    image = client.get(f"/api/images/{upload_id}/{examples['target']['images_version']}/{first['part']}/{first['index']}.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "config": {"dataset": upload_id, "n": 30, "epochs": 1}})
        seen = []
        while (msg := ws.receive_json())["type"] != "done":
            assert msg["type"] != "error", msg
            seen.append(msg)
        plan = next(m for m in seen if m["type"] == "plan")
        assert plan["classes"] == ["circle", "square", "triangle"] and plan["train_size"] == 30
        ws.send_json({"type": "start", "config": {"dataset": upload_id, "n": 200}})
        refused = ws.receive_json()
        assert refused["code"] == "dataset_too_small" and "at most 72" in refused["message"]
    assert upload_id not in json.dumps(client.get("/api/races").json())
    assert client.delete(f"/api/datasets/{upload_id}").status_code == 204
    assert client.get(f"/api/datasets/{upload_id}").json()["code"] == "unknown_dataset"
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "config": {"dataset": upload_id, "n": 30}})
        assert ws.receive_json()["code"] == "unknown_dataset"
    assert not (settings.uploads.upload_dir / upload_id).exists()


def test_an_upload_from_another_sites_page_is_refused(server: tuple[TestClient, Settings]) -> None:
    client, _ = server
    refused = post_zip(client, payloads.class_zip(per_class=12), origin="https://evil.example")
    assert refused.status_code == 409 and refused.json()["code"] == "origin_not_allowed"
    assert post_zip(client, payloads.class_zip(per_class=12), origin="http://testserver").status_code == 201


def test_the_endpoint_says_each_limit_it_meets(tiny: Settings, tmp_path: Path) -> None:
    small = payloads.class_zip(per_class=12)
    size = (len(small) + 1000) / intake.MB  # with its form's headers
    settings = tiny.model_copy(
        update={
            "upload_dir": tmp_path / "uploads",
            "database": tmp_path / "races.sqlite3",
            "max_upload_mb": 1.5 * size,
            "upload_mb_per_address_per_hour": 2.5 * size,
        }
    )
    with TestClient(create_app(settings)) as client:
        too_large = post_zip(client, payloads.class_zip(per_class=40))
        assert too_large.status_code == 413 and "(max_upload_mb)" in too_large.json()["message"]
        assert post_zip(client, small).status_code == 201
        assert post_zip(client, small).status_code == 201
        spent = post_zip(client, small)
        assert spent.status_code == 429 and "(upload_mb_per_address_per_hour)" in spent.json()["message"]
        bad = client.post("/api/datasets", content=b"not a form", headers={"content-type": "text/plain"})
        assert bad.status_code == 415 and bad.json()["code"] == "not_multipart"
    assert not list((tmp_path / "uploads" / uploads.INCOMING).iterdir())  # nothing left behind


def test_a_body_past_the_limit_is_refused_as_it_streams(tiny: Settings, tmp_path: Path) -> None:
    folders = {"upload_dir": tmp_path / "uploads", "database": tmp_path / "r.sqlite3"}
    settings = tiny.model_copy(update={**folders, "max_upload_mb": 0.1})
    boundary = "xyz"

    def body() -> Iterator[bytes]:  # no Content-Length: the server counts what arrives
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n\r\n'.encode()
        for _ in range(100):
            yield b"\0" * 4096

    with TestClient(create_app(settings)) as client:
        form = {"content-type": f"multipart/form-data; boundary={boundary}"}
        refused = client.post("/api/datasets", content=body(), headers=form)
        assert refused.status_code == 413 and refused.json()["code"] == "upload_too_large"
        assert client.get("/healthz").status_code == 200
