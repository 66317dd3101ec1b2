"""Synthetic demo data: a team, its people, two children with consent, the starter boards.

Everything here is invented. The passwords are random and printed once (and kept in
data_dir/demo-credentials.txt) so nothing secret lives in the code.
"""

from __future__ import annotations

import secrets
from datetime import date, timedelta

from sqlmodel import Session, func, select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.security import PasswordHashing
from app.models.board import BoardWrite
from app.models.child import Allocation, Child
from app.models.consent import Consent
from app.models.staff import Role, Team, User
from app.services.staff import add_user
from app.services.boards.starter import install_starter
from app.starter.boards import FEELINGS, SAFEGUARDING
from app.storage import make_store


def feelings_board() -> BoardWrite:
    """A picture-less feelings board (benchmarks use it; the demo installs the starter set)."""
    labels = FEELINGS + ["hurt", "unsafe", "secret", "finished"]
    buttons = []
    for label in labels:
        button = {"id": label.replace(" ", "_"), "label": label,
                  "vocalization": "I'm finished" if label == "finished" else f"I feel {label}"}
        if label in SAFEGUARDING:
            button["ext_childvoice_safeguarding"] = True
        buttons.append(button)
    ids = [b["id"] for b in buttons]
    return BoardWrite.model_validate({
        "name": "How I feel", "locale": "en",
        "grid": {"rows": 3, "columns": 4, "order": [ids[0:4], ids[4:8], ids[8:12]]},
        "buttons": buttons})


def is_empty(db: Session) -> bool:
    return db.exec(select(func.count()).select_from(User)).one() == 0


def load_demo(db: Session, settings: Settings, hashing: PasswordHashing) -> dict[str, str]:
    """Fill an empty database; returns email -> password of the demo accounts."""
    team = Team(name="Demo Disabled Children's Team")
    db.add(team)
    db.flush()
    people = {
        "worker@demo.childvoice.example": ("Sam Demo-Worker", Role.social_worker, team.id),
        "manager@demo.childvoice.example": ("Jo Demo-Manager", Role.team_manager, team.id),
        "admin@demo.childvoice.example": ("Ari Demo-Admin", Role.admin, None),
    }
    credentials = {}
    users = {}
    for email, (name, role, team_id) in people.items():
        password = settings.demo_password or secrets.token_urlsafe(12)
        users[role] = add_user(db, hashing, email, name, role, team_id, password)
        credentials[email] = password
    worker = users[Role.social_worker]

    now = utcnow()
    children = [
        Child(preferred_name="Robin", date_of_birth=date(2015, 4, 2), team_id=team.id,
              communication={"methods": ["makaton", "symbols"],
                             "yes_signal": "Smiles and taps the card",
                             "no_signal": "Turns head away", "happy_signs": "Hums and rocks",
                             "upset_signs": "Covers ears", "notes": "Give time to answer."},
              board_preferences={"symbol_size": "large", "labels_shown": True,
                                 "speech_on": True}, created_by=worker.id),
        Child(preferred_name="Kai", date_of_birth=date(2011, 9, 17), team_id=team.id,
              communication={"methods": ["eye_gaze", "symbols"],
                             "yes_signal": "Looks up", "no_signal": "Looks down",
                             "happy_signs": "Laughs", "upset_signs": "Cries out"},
              board_preferences={"symbol_size": "extra_large", "labels_shown": False,
                                 "speech_on": True, "max_rows": 2, "max_columns": 3},
              created_by=worker.id),
    ]
    for child in children:
        db.add(child)
        db.flush()
        db.add(Allocation(child_id=child.id, user_id=worker.id, started_at=now,
                          allocated_by=users[Role.team_manager].id))
        db.add(Consent(child_id=child.id, given_by="parent_or_carer", giver_name="Demo Parent",
                       relationship="mother",
                       scopes=["audio", "photo", "plan", "share_family", "symbols"],
                       method="written", child_assent="agreed",
                       valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=365),
                       recorded_by=worker.id))
    db.commit()
    install_starter(db, settings, make_store(settings), users[Role.admin].id)
    return credentials
