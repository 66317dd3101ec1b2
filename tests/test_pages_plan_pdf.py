"""My plan as a PDF (WeasyPrint): the chosen symbols' labels are text a case system can
read, the pictures are embedded, a withdrawn consent's entry is not in it, and a published
version's PDF is the same bytes every time, even after the plan changes."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from tests.plan_support import PlanWorld, build
from tests.support import World


@pytest.fixture
def plan(world: World, app) -> PlanWorld:  # noqa: ANN001
    return build(world, app)


def _read(data: bytes) -> tuple[str, int, PdfReader]:
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    images = sum(len(page.images) for page in reader.pages)
    return text, images, reader


def test_the_pdf_has_the_labels_as_text_and_the_pictures_in_it(plan: PlanWorld) -> None:
    r = plan.world.worker.get(f"/children/{plan.child_id}/plan.pdf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    text, images, reader = _read(r.content)
    for words in ("My plan", "You said", "We noticed", "Your mum told us", "happy", "calm",
                  "Nan", "music", "cooking", "You don't like", "The swings", "OpenMoji",
                  "CC BY-SA 4.0"):
        assert words in text, words
    # The symbols (happy, calm, Nan, music, tv, cooking), the photo, the pictures beside
    # the words and on the mat's columns.
    assert images >= 8
    sizes = [len(image.data) for page in reader.pages for image in page.images]
    assert min(sizes) > 0
    assert "tired" not in text and "WORKER-NOTE" not in text
    assert "There is a recording here" in text
    assert len(reader.pages) >= 5  # a section to a page


def test_a_published_versions_pdf_never_changes(plan: PlanWorld) -> None:
    world = plan.world
    url = f"/children/{plan.child_id}/plan/versions/1.pdf"
    first = world.worker.get(url)
    assert first.status_code == 200, first.text
    assert world.manager.get(url).content == first.content  # another reader, same bytes
    text, images, reader = _read(first.content)
    assert "This is version 1 of your plan." in text and images >= 8
    published = world.worker.get(f"/children/{plan.child_id}/plan/versions/1").json()
    assert reader.metadata.creation_date.isoformat()[:19] == \
        published["published_at"][:19]

    # The plan changes: new words, another pin, a second version.
    now_before = world.worker.get(f"/children/{plan.child_id}/plan.pdf").content
    r = world.worker.put(f"/children/{plan.child_id}/plan/sections/my_goals", json={
        "text": "I want to learn to swim.",
        "pinned_entry_ids": [plan.entries["symbols"]["id"]]})
    assert r.status_code == 200, r.text
    assert world.worker.post(f"/children/{plan.child_id}/plan/versions").status_code == 201
    assert world.worker.get(url).content == first.content
    now_after = world.worker.get(f"/children/{plan.child_id}/plan.pdf").content
    assert now_after != now_before
    assert "I want to learn to swim." in _read(now_after)[0]
    assert "I want to learn to swim." not in _read(world.worker.get(url).content)[0]


def test_who_may_have_the_pdf(plan: PlanWorld, client) -> None:  # noqa: ANN001
    world = plan.world
    assert world.worker.get(f"/children/{plan.child_id}/plan.pdf").status_code == 200
    assert world.other_worker.get(f"/children/{plan.child_id}/plan.pdf").status_code == 404
    assert world.worker.get(f"/children/{plan.child_id}/plan/versions/7.pdf").status_code == 404
    # A browser is sent to the sign-in page; any other client is told it is not signed in.
    r = client.get(f"/api/v1/children/{plan.child_id}/plan.pdf", follow_redirects=False,
                   headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.status_code == 303
    assert client.get(f"/api/v1/children/{plan.child_id}/plan.pdf").status_code == 401
    trail = world.manager.get(f"/children/{plan.child_id}/audit",
                              params={"limit": 200}).json()["items"]
    assert "plan.pdf" in [e["action"] for e in trail]
