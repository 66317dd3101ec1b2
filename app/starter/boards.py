"""The starter set for direct work: what a worker needs on a first visit.

Each button names an OpenMoji picture by its Unicode code points; the PNGs are in
`images/` (made by scripts/render_starter_images.py) under CC BY-SA 4.0, credited in
`images/LICENSE.md` and on every image's licence object.
"""

from __future__ import annotations

# (label, vocalization, OpenMoji code points)
Button = tuple[str, str, str]

OPENMOJI_LICENSE = {
    "type": "CC BY-SA 4.0",
    "copyright_notice_url": "https://creativecommons.org/licenses/by-sa/4.0/",
    "author_name": "OpenMoji",
    "author_url": "https://openmoji.org/",
}

FEELINGS = ["happy", "sad", "angry", "scared", "worried", "calm", "tired", "not sure"]
# Buttons a child may use to tell us they are not safe: marked for the safeguarding flow.
SAFEGUARDING = {"hurt", "scared", "unsafe", "secret"}

STARTER: list[dict] = [
    {"key": "feelings", "name": "How I feel", "columns": 4, "buttons": [
        ("happy", "I feel happy", "1F600"),
        ("sad", "I feel sad", "1F622"),
        ("angry", "I feel angry", "1F620"),
        ("scared", "I feel scared", "1F628"),
        ("worried", "I feel worried", "1F61F"),
        ("calm", "I feel calm", "1F60C"),
        ("tired", "I feel tired", "1F971"),
        ("not sure", "I'm not sure", "1F914"),
        ("hurt", "I am hurt", "1F915"),
        ("unsafe", "I don't feel safe", "26A0"),
        ("secret", "I have a secret", "1F92B"),
        ("finished", "I'm finished", "1F3C1"),
    ]},
    {"key": "yes_no", "name": "Yes and no", "columns": 5, "buttons": [
        ("yes", "yes", "2705"),
        ("no", "no", "274C"),
        ("stop", "stop", "1F6D1"),
        ("more", "more", "2795"),
        ("finished", "I'm finished", "1F3C1"),
    ]},
    {"key": "people", "name": "People", "columns": 4, "buttons": [
        ("me", "me", "1F9D2"),
        ("mum", "mum", "1F469"),
        ("dad", "dad", "1F468"),
        ("brother", "my brother", "1F466"),
        ("sister", "my sister", "1F467"),
        ("grandparent", "my grandparent", "1F475"),
        ("carer", "my carer", "1F9D1-200D-1F37C"),
        ("friend", "my friend", "1F9D1-200D-1F91D-200D-1F9D1"),
        ("teacher", "my teacher", "1F9D1-200D-1F3EB"),
        ("social worker", "my social worker", "1F9D1-200D-1F4BC"),
        ("doctor", "the doctor", "1F9D1-200D-2695-FE0F"),
        ("pet", "my pet", "1F436"),
    ]},
    {"key": "places", "name": "Places", "columns": 4, "buttons": [
        ("home", "home", "1F3E0"),
        ("school", "school", "1F3EB"),
        ("my bedroom", "my bedroom", "1F6CF"),
        ("the park", "the park", "1F333"),
        ("shops", "the shops", "1F6D2"),
        ("car", "the car", "1F697"),
        ("hospital", "the hospital", "1F3E5"),
        ("swimming pool", "the swimming pool", "1F3CA"),
    ]},
    {"key": "activities", "name": "Things I do", "columns": 4, "buttons": [
        ("playing", "playing", "1F9F8"),
        ("tablet", "my tablet", "1F4F1"),
        ("tv", "watching TV", "1F4FA"),
        ("music", "music", "1F3B5"),
        ("drawing", "drawing", "1F58D"),
        ("books", "books", "1F4DA"),
        ("football", "football", "26BD"),
        ("cooking", "cooking", "1F373"),
        ("bath time", "bath time", "1F6C1"),
        ("bedtime", "bedtime", "1F634"),
        ("going out", "going out", "1F6B6"),
        ("seeing family", "seeing my family", "1F46A"),
    ]},
    {"key": "i_want", "name": "I want…", "columns": 4, "buttons": [
        ("drink", "I want a drink", "1F964"),
        ("food", "I want something to eat", "1F37D"),
        ("toilet", "I want the toilet", "1F6BD"),
        ("break", "I want a break", "23F8"),
        ("help", "I want help", "1F64B"),
        ("hug", "I want a hug", "1FAC2"),
        ("quiet", "I want it quiet", "1F507"),
        ("go home", "I want to go home", "1F3E0"),
        ("play", "I want to play", "1F9F8"),
        ("more", "I want more", "2795"),
        ("stop", "I want to stop", "1F6D1"),
        ("finished", "I'm finished", "1F3C1"),
    ]},
    {"key": "top_scale", "name": "What I think", "columns": 3,
     "scale": ["like", "not sure", "don't like"], "buttons": [
        ("like", "I like it", "1F44D"),
        ("not sure", "I'm not sure", "1F937"),
        ("don't like", "I don't like it", "1F44E"),
    ]},
]


def image_file(codepoints: str) -> str:
    return f"{codepoints.lower()}.png"


def all_codepoints() -> list[str]:
    return sorted({b[2] for board in STARTER for b in board["buttons"]})
