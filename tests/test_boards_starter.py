"""The starter library: installed by `childvoice boards install-starter` and by the demo,
once; every picture stored, served and credited; safeguarding buttons marked; and the
child's board preferences come with the session's boards."""

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app import cli
from app.core.config import get_settings
from tests.support import Api, World, consent_body

STARTER_NAMES = {"How I feel", "Yes and no", "People", "Places", "Things I do", "I want…",
                 "What I think"}


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings, app):  # noqa: ANN001, ANN201
    monkeypatch.setenv("CHILDVOICE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("CHILDVOICE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CHILDVOICE_MEDIA_ROOT", str(settings.media_root))
    get_settings.cache_clear()
    yield TestClient(app)
    get_settings.cache_clear()


def _library(api: Api) -> dict[str, dict]:
    items = api.get("/boards", params={"limit": 200}).json()["items"]
    return {b["name"]: api.get(f"/boards/{b['id']}").json() for b in items}


def test_install_starter_once_with_credited_pictures(cli_env: TestClient, world: World,
                                                     capsys) -> None:  # noqa: ANN001
    assert cli.main(["boards", "install-starter"]) == 0
    assert "added 7 starter boards" in capsys.readouterr().out
    assert cli.main(["boards", "install-starter"]) == 0
    assert "already in the library" in capsys.readouterr().out

    names = [b["name"] for b in world.worker.get("/boards", params={"limit": 200})
             .json()["items"]]
    # Once each (the test world has its own "How I feel" board, without pictures).
    assert sorted(n for n in names if n in STARTER_NAMES) == \
        sorted([*STARTER_NAMES, "How I feel"])
    library = _library(world.worker)
    feelings = library["How I feel"]
    labels = [b["label"] for b in feelings["buttons"]]
    assert labels[:8] == ["happy", "sad", "angry", "scared", "worried", "calm", "tired",
                          "not sure"]
    marked = {b["label"] for b in feelings["buttons"] if b.get("ext_childvoice_safeguarding")}
    assert marked == {"hurt", "scared", "unsafe", "secret"}
    assert [b["label"] for b in library["Yes and no"]["buttons"]] == \
        ["yes", "no", "stop", "more", "finished"]
    scale = library["What I think"]
    assert [b["label"] for b in scale["buttons"]] == ["like", "not sure", "don't like"]
    assert scale["ext_childvoice_scale"] == ["like", "not sure", "don't like"]
    assert library["I want…"]["buttons"][0]["vocalization"] == "I want a drink"

    for name in STARTER_NAMES:
        board = library[name]
        images = {i["id"]: i for i in board["images"]}
        for button in board["buttons"]:
            image = images[button["image_id"]]
            assert image["license"]["type"] == "CC BY-SA 4.0"
            assert image["license"]["author_name"] == "OpenMoji"
            assert image["license"]["source_url"].startswith("https://openmoji.org/library/")
        picture = world.worker.get(board["images"][0]["ext_childvoice_url"]
                                   .removeprefix("/api/v1"))
        assert picture.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(picture.content)).size == (128, 128)
    credit = world.worker.get(f"/boards/{feelings['id']}/attribution").json()["items"]
    assert len(credit) == 12 and all(i["requires_attribution"] for i in credit)
    assert all("OpenMoji, CC BY-SA 4.0" in i["text"] for i in credit)


def test_session_boards_come_with_the_childs_preferences(world: World) -> None:
    prefs = {"symbol_size": "extra_large", "labels_shown": False, "speech_on": False,
             "max_rows": 2, "max_columns": 3, "symbol_set": "openmoji"}
    r = world.worker.post("/children", json={
        "preferred_name": "Kai", "date_of_birth": "2012-01-02", "team_id": world.team_id,
        "board_preferences": prefs})
    child = r.json()
    world.worker.post(f"/children/{child['id']}/consents", json=consent_body())
    session = world.open_session(child_id=child["id"])
    answer = world.capture(session).get(f"/sessions/{session['id']}/boards").json()
    assert answer["board_preferences"] == prefs
    assert answer["boards"][0]["id"] == world.board["id"]
