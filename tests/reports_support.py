"""A hand-built world for the handover, timeline and voice report tests: every visit and
entry made through the API, with the server clock moved forward between visits."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from app.core.clock import clock
from tests.support import Api, World, consent_body


def board_body() -> dict:
    """One board for everything: feelings (hurt is a safeguarding symbol) and places."""
    ids = ["happy", "sad", "hurt", "school", "park", "swimming"]
    buttons = [{"id": i, "label": i} for i in ids]
    buttons[2]["ext_childvoice_safeguarding"] = True
    return {"name": "Feelings and places", "grid": {"rows": 2, "columns": 3,
                                                     "order": [ids[:3], ids[3:]]},
            "buttons": buttons}


class Visits:
    """Visits made through the API, at server times the test chooses."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.start = datetime.now(timezone.utc).replace(microsecond=0)
        r = world.admin.post("/boards", json=board_body())
        assert r.status_code == 201, r.text
        self.board = r.json()

    def at(self, days: float) -> datetime:
        """Move the server clock to `days` after the start; everyone signs in again."""
        when = self.start + timedelta(days=days)
        clock.set(when)
        self.world.sign_in_again()
        return when

    def add_child(self, name: str) -> str:
        r = self.world.worker.post("/children", json={
            "preferred_name": name, "date_of_birth": "2014-06-01",
            "team_id": self.world.team_id})
        assert r.status_code == 201, r.text
        child_id = r.json()["id"]
        r = self.world.worker.post(f"/children/{child_id}/consents", json=consent_body())
        assert r.status_code == 201, r.text
        return child_id

    def visit(self, child_id: str, worker: Api | None = None, *, purpose: str = "a visit",
              setting: str = "home") -> dict:
        r = (worker or self.world.worker).post(
            f"/children/{child_id}/sessions",
            json={"setting": setting, "purpose": purpose, "board_ids": [self.board["id"]]})
        assert r.status_code == 201, r.text
        return r.json()

    def _post(self, session: dict, body: dict, worker: Api | None = None) -> dict:
        # Observations and a parent's report are the worker's to record, never child mode's.
        by_worker = body["kind"] == "observation" or body.get("source") == "parent_or_carer_report"
        caller = worker or self.world.worker if by_worker else self.world.capture(session)
        clock.set(clock.now() + timedelta(seconds=1))  # the child answers one at a time
        body = {"client_id": str(uuid.uuid4()),
                "captured_at": clock.now().isoformat()} | body
        r = caller.post(f"/sessions/{session['id']}/entries", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def symbols(self, session: dict, buttons: list[str], *, topic: str = "feelings",
                source: str = "child_direct") -> dict:
        return self._post(session, {"kind": "symbols", "source": source, "topic": topic,
                                    "prompt": "How do you feel?", "board_id": self.board["id"],
                                    "board_version": self.board["version"],
                                    "button_ids": buttons})

    def mat(self, session: dict, placements: list[tuple[str, str]], *,
            source: str = "child_direct", topic: str = "places") -> dict:
        return self._post(session, {
            "kind": "mat", "source": source, "topic": topic, "prompt": "Sort these",
            "board_id": self.board["id"], "board_version": self.board["version"],
            "scale": ["like", "not sure", "don't like"],
            "placements": [{"button_id": b, "scale_value": v} for b, v in placements]})

    def observation(self, session: dict, text: str, worker: Api | None = None) -> dict:
        return self._post(session, {"kind": "observation", "source": "adult_interpretation",
                                    "topic": "mood", "text": text}, worker)

    def text(self, session: dict, words: str, *, source: str) -> dict:
        return self._post(session, {"kind": "text", "source": source, "topic": "weekends",
                                    "text": words})

    def end(self, session: dict, worker: Api | None = None) -> None:
        r = (worker or self.world.worker).post(f"/sessions/{session['id']}/end")
        assert r.status_code == 200, r.text
