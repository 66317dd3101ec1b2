"""Hostile packages: each is refused with a clear 4xx (or, where only one board is bad, a
per-board skip reason), never a 500, and nothing is written outside the media root."""

import io
import stat
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.boards_support import import_bytes, make_zip, manifest, simple_board
from tests.support import World, assert_problem


def _files(base: Path) -> set[str]:
    return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}


@pytest.fixture
def guarded(world: World, app, settings) -> Iterator[World]:  # noqa: ANN001
    """Nothing may appear outside the media root (the database and its journal aside), and
    the media root's staging area must be empty again after each request."""
    base = settings.media_root.parent
    media = str(settings.media_root.relative_to(base))
    before = _files(base)
    yield world
    after = _files(base)
    new = {f for f in after - before
           if not f.startswith(media + "/") and not f.startswith(("test.db", "data/"))}
    assert new == set(), f"written outside the media root: {new}"
    staging = settings.media_root / "tmp"  # the processes' staging areas, and their locks
    assert not staging.exists() or \
        [p for p in staging.rglob("*") if p.is_file() and not p.name.endswith(".lock")] == []


def _board_zip(extra: dict) -> bytes:
    members = {"manifest.json": manifest({"b": "boards/b.obf"}),
               "boards/b.obf": simple_board("b", ["yes"])}
    return make_zip(members | extra)


def _patch_central(data: bytes, index: int, offset: int, fmt: str, value: int) -> bytes:
    """Change one field of the index-th central directory header."""
    at = -1
    for _ in range(index + 1):
        at = data.index(b"PK\x01\x02", at + 1)
    buf = bytearray(data)
    struct.pack_into(fmt, buf, at + offset, value)
    return bytes(buf)


def test_zip_bomb_by_ratio(guarded: World) -> None:
    bomb = make_zip({"manifest.json": manifest({"b": "boards/b.obf"}),
                     "boards/b.obf": b" " * (8 * 1024 * 1024)})
    assert len(bomb) < 64 * 1024
    problem = assert_problem(import_bytes(guarded.admin, bomb), 413)
    assert problem["type"].endswith("/zip-bomb") and "compressed more than" in problem["detail"]


def test_zip_bomb_by_declared_size(guarded: World) -> None:
    data = _board_zip({})
    huge = _patch_central(data, 1, 24, "<I", 0x7FFF0000)  # boards/b.obf claims ~2 GB
    problem = assert_problem(import_bytes(guarded.admin, huge), 413)
    assert "declares" in problem["detail"] and problem["type"].endswith("/zip-bomb")


def test_zip_bomb_by_total_size(guarded: World, monkeypatch: pytest.MonkeyPatch,
                                settings) -> None:  # noqa: ANN001
    monkeypatch.setattr(settings, "board_zip_max_total_bytes", 200_000)
    members = {f"images/{i}.png": bytes(range(256)) * 400 for i in range(3)}  # 3 x 100 KB
    problem = assert_problem(import_bytes(guarded.admin, _board_zip(members)), 413)
    assert "declare more than" in problem["detail"]


def test_member_that_unpacks_to_more_than_it_declares(guarded: World) -> None:
    board = simple_board("b", [f"word {i}" for i in range(10)])
    data = make_zip({"b.obf": board})
    lying = _patch_central(data, 0, 24, "<I", 20)  # declares 20 bytes, holds far more
    problem = assert_problem(import_bytes(guarded.admin, lying), 422)
    assert "damaged" in problem["skipped"][0]["reason"]


def test_overlapping_members(guarded: World) -> None:
    data = make_zip({"a.obf": simple_board("a", ["x"]), "b.obf": simple_board("b", ["y"])})
    overlapping = _patch_central(data, 1, 42, "<I", 0)  # b.obf's data is a.obf's
    problem = assert_problem(import_bytes(guarded.admin, overlapping), 413)
    assert "overlap" in problem["detail"]


@pytest.mark.parametrize("name", ["../evil.obf", "boards/../../evil.obf", "/etc/evil.obf",
                                  "boards\\..\\evil.obf", "C:/evil.obf"])
def test_member_names_outside_the_package(guarded: World, name: str) -> None:
    data = _board_zip({name: simple_board("e", ["x"])})
    problem = assert_problem(import_bytes(guarded.admin, data), 422)
    assert problem["type"].endswith("/unsafe-member-name")
    assert not any(Path("/").glob("etc/evil.obf"))


def test_symlink_member(guarded: World) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("manifest.json", "{}")
        link = zipfile.ZipInfo("boards/b.obf")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    assert_problem(import_bytes(guarded.admin, out.getvalue()), 422)


def test_ten_thousand_tiny_members(guarded: World) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("b.obf", '{"buttons": []}')
        for i in range(10_000):
            zf.writestr(f"junk/{i}.txt", "x")
    problem = assert_problem(import_bytes(guarded.admin, out.getvalue()), 422)
    assert problem["type"].endswith("/too-many-members") and "10,001" in problem["detail"]


def test_nested_archives(guarded: World) -> None:
    inner = make_zip({"b.obf": simple_board("inner", ["x"])})
    problem = assert_problem(import_bytes(guarded.admin, _board_zip({"boards/inner.zip": inner})),
                             422)
    assert problem["type"].endswith("/nested-archive")
    disguised = _board_zip({"boards/b.obf": simple_board("b", ["cat"]) | {
        "images": [{"id": "1", "path": "images/cat.png"}]}, "images/cat.png": inner})
    problem = assert_problem(import_bytes(guarded.admin, disguised), 422)
    assert problem["type"].endswith("/nested-archive")


def _png(size: tuple[int, int], mode: str = "1") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG")
    return out.getvalue()


def test_image_members_that_are_bombs_or_not_images_skip_their_board(guarded: World) -> None:
    boards = {name: simple_board(name, ["picture"]) | {
        "images": [{"id": "1", "path": f"images/{name}.png"}]}
        for name in ("bomb", "text", "svg", "good")}
    for board in boards.values():
        board["buttons"][0]["image_id"] = "1"
    members = {f"boards/{n}.obf": b for n, b in boards.items()} | {
        "manifest.json": manifest({n: f"boards/{n}.obf" for n in boards}),
        "images/bomb.png": _png((6000, 6000)),  # 36 million pixels in a few KB
        "images/text.png": b"I am not a picture at all",
        "images/svg.png": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        "images/good.png": _png((40, 40), "RGB")}
    r = import_bytes(guarded.admin, make_zip(members))
    assert r.status_code == 201, r.text
    assert [b["source_id"] for b in r.json()["imported"]] == ["good"]
    reasons = {s["source_id"]: s["reason"] for s in r.json()["skipped"]}
    assert "pixels" in reasons["bomb"]
    assert "not a photo" in reasons["text"]  # the media pipeline's own words
    assert "SVG" in reasons["svg"]


def test_manifest_pointing_at_missing_files(guarded: World) -> None:
    data = make_zip({"manifest.json": manifest({"root": "boards/root.obf",
                                                "other": "boards/other.obf"})})
    problem = assert_problem(import_bytes(guarded.admin, data), 422)
    assert problem["type"].endswith("/nothing-imported")
    assert {s["reason"] for s in problem["skipped"]} == {
        "boards/root.obf is not in the package", "boards/other.obf is not in the package"}
    bad = make_zip({"manifest.json": "{not json", "b.obf": simple_board("b", ["x"])})
    assert assert_problem(import_bytes(guarded.admin, bad), 422)["type"].endswith("/bad-manifest")


def test_not_a_zip_too_big_and_too_many_boards(guarded: World, settings,  # noqa: ANN001
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    problem = assert_problem(import_bytes(guarded.admin, b"PK\x03\x04 but nothing else"), 422)
    assert problem["type"].endswith("/not-a-package")
    many = make_zip({f"b{i}.obf": simple_board(str(i), ["x"]) for i in range(5)})
    monkeypatch.setattr(settings, "board_max_boards", 3)
    assert_problem(import_bytes(guarded.admin, many), 422)
    monkeypatch.setattr(settings, "board_upload_max_bytes", 1000)
    problem = assert_problem(import_bytes(guarded.admin, b"{" + b" " * 5000 + b"}"), 413)
    assert problem["max_bytes"] == 1000


def test_damaged_pictures_are_skip_reasons(guarded: World) -> None:
    import random

    rng = random.Random(6)
    good = _png((60, 40), "RGB")
    variants = [good[:len(good) // 2], good[:40]]
    for _ in range(8):
        broken = bytearray(good)
        for _ in range(6):
            broken[rng.randrange(16, len(broken))] = rng.randrange(256)
        variants.append(bytes(broken))
    members = {"manifest.json": manifest({f"b{i}": f"boards/b{i}.obf"
                                          for i in range(len(variants))})}
    for i, data in enumerate(variants):
        board = simple_board(f"b{i}", ["picture"]) | {
            "images": [{"id": "1", "path": f"images/{i}.png"}]}
        board["buttons"][0]["image_id"] = "1"
        members[f"boards/b{i}.obf"] = board
        members[f"images/{i}.png"] = data
    r = import_bytes(guarded.admin, make_zip(members))
    assert r.status_code in (201, 422), r.text
    body = r.json()
    assert len(body.get("imported", [])) + len(body.get("skipped", [])) == len(variants)
