"""Red-team planted cases (issue 12): burned-in text drawn the ways the team's generator does not.

    .venv/bin/python bench/redteam/make_planted.py OUT_DIR [--seed 4207] [--only NAME]

Writes OUT_DIR/<case>.dcm and OUT_DIR/truth.json in the schema of bench/pixel_eval/make_hard_cases.py
(a list of cases, each with annotations.json-style boxes), so bench/pixel_eval/dataset.load_generated
reads it. Deterministic: fixed seed, fixed UIDs, no timestamps, no network.

The team's generator draws with Pillow's default font and Hershey SIMPLEX, anti-aliased, upright, bright
on dark. This one uses the other Hershey faces (PLAIN, DUPLEX, COMPLEX, TRIPLEX, COMPLEX_SMALL, SCRIPT
SIMPLEX/COMPLEX, each also italic), hairline and heavy strokes, aliased (LINE_8) and anti-aliased,
heights 5-60 px, quarter turns (vertical text along an edge), dark text on bright or grey label plates,
coloured text on grey-looking RGB, 10-30 level contrast, text touching or over anatomy, in the middle,
two- and four-line blocks, letter-spaced, digits only, lower case, last frame only, MONOCHROME1, 12-bit
text above the VOI window, text cut by the image border, and authorised mammography labels beside a name.

Bases: real pixel data (693_UNCI CT, CT_small, MR2_UNCI, RG1/RG3 CR, emri_small, US1_UNCR, OT-PAL-8-face,
deid-data's ultrasound-multiframe and dicom-cookies image1) and synthetic 3328x2560 mammograms and
800x600 ultrasound frames built here (not the team's RG1-textured breast). Where a real base already
carries burned-in text, its boxes are taken from annotations.json.

Each PHI box is the drawn glyphs' own bounding box (+1 px), clipped to the image.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "pixel_eval"))
from dataset import package_root  # noqa: E402
from make_hard_cases import dataset as mono_dataset  # noqa: E402

DEFAULT_SEED = 4207
ANNOTATIONS = HERE.parent / "pixel_eval" / "annotations.json"

FONTS = {
    "plain": cv2.FONT_HERSHEY_PLAIN, "duplex": cv2.FONT_HERSHEY_DUPLEX, "complex": cv2.FONT_HERSHEY_COMPLEX,
    "triplex": cv2.FONT_HERSHEY_TRIPLEX, "small": cv2.FONT_HERSHEY_COMPLEX_SMALL,
    "script": cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, "script2": cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
    "simplex": cv2.FONT_HERSHEY_SIMPLEX,
}
# names none of the team's lists use: apostrophes, hyphens, particles, long and short ones
PEOPLE = [("O'ROURKE", "SIOBHAN"), ("FEATHERSTONEHAUGH", "OTTOLINE"), ("BRZEZINSKI", "ZBIGNIEW"),
          ("VAN DER BERG", "PIETER"), ("MBEKI", "THABO"), ("NAKAMURA-LOPEZ", "EMI"), ("QUIGLEY", "ROSE"),
          ("AL-HASHIMI", "YUSUF"), ("DUBOIS", "AMELIE"), ("ERIKSSON", "BJORN"), ("WOJCIK", "HALINA"),
          ("PATEL", "RAVI"), ("FITZGERALD", "CIARAN"), ("ZHANG", "WEI"), ("KOVACS", "ILONA")]
SITES = ["ST BRIGID'S HOSPITAL", "LAKESHORE WOMENS CLINIC", "MERCY RADIOLOGY EAST"]
SOP = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4", "CR": "1.2.840.10008.5.1.4.1.1.1",
       "MG": "1.2.840.10008.5.1.4.1.1.1.2", "US": "1.2.840.10008.5.1.4.1.1.6.1", "USMF": "1.2.840.10008.5.1.4.1.1.3.1",
       "OT": "1.2.840.10008.5.1.4.1.1.7"}


@dataclass
class Style:
    font: str = "complex"
    italic: bool = False
    thick: int | None = None  # stroke width in px at the final size; None: height / 12
    aa: bool = True
    turns: int = 0  # quarter turns counter-clockwise (1: reads bottom to top)


@dataclass
class Canvas:
    """Float frames being drawn on; collects the ground-truth boxes."""

    pixels: np.ndarray  # (frames, rows, cols) or (frames, rows, cols, 3)
    boxes: list[dict] = field(default_factory=list)

    def draw(self, text: str, kind: str, x: int, y: int, height: int, value, style: Style | None = None,
             frames: list[int] | str = "all", cls: str = "phi", clip: bool = False) -> tuple[int, int, int, int]:
        """Burn text with its glyphs' top-left at (x, y); returns the box. clip: may run off the image."""
        style = style or Style()
        mask = glyph_mask(text, height, style)
        h, w = mask.shape
        rows, cols = self.pixels.shape[1:3]
        if not clip and (x < 0 or y < 0 or y + h > rows or x + w > cols):
            raise ValueError(f"{text!r} ({height} px) does not fit at {x},{y} in {cols}x{rows}")
        ya, yb, xa, xb = max(0, y), min(rows, y + h), max(0, x), min(cols, x + w)
        m = mask[ya - y:yb - y, xa - x:xb - x]
        val = np.asarray(value, dtype=np.float64)
        targets = range(self.pixels.shape[0]) if frames == "all" else frames
        for i in targets:
            region = self.pixels[i, ya:yb, xa:xb]
            mm = m[..., None] if region.ndim == 3 else m
            self.pixels[i, ya:yb, xa:xb] = region * (1 - mm) + val * mm
        ys, xs = np.nonzero(m > 0.25)
        box = (max(0, xa + int(xs.min()) - 1), max(0, ya + int(ys.min()) - 1),
               min(cols, xa + int(xs.max()) + 2), min(rows, ya + int(ys.max()) + 2))
        self.boxes.append({"cls": cls, "kind": kind, "text": text, "box": list(box), "frames": frames,
                           "height_px": height, "style": f"{style.font}{' italic' if style.italic else ''}"
                           f" t{style.thick or 'auto'}{' aa' if style.aa else ' aliased'} turns{style.turns}"})
        return box

    def plate(self, x0: int, y0: int, x1: int, y1: int, value, frames: list[int] | str = "all") -> None:
        """A flat label plate (not PHI itself: its text is)."""
        for i in range(self.pixels.shape[0]) if frames == "all" else frames:
            self.pixels[i, y0:y1, x0:x1] = value


def glyph_mask(text: str, height: int, style: Style) -> np.ndarray:
    """Coverage (0..1) of `text` whose capitals are `height` px tall, trimmed, turned."""
    face = FONTS[style.font] | (cv2.FONT_ITALIC if style.italic else 0)
    (_, cap), _ = cv2.getTextSize("H", face, 1.0, 1)
    scale = height / cap
    thick = style.thick or max(1, round(height / 12))
    (w, h), base = cv2.getTextSize(text, face, scale, thick)
    pad = thick + 4 + (h // 2 if style.italic else 0)
    img = np.zeros((h + base + 2 * pad, w + 2 * pad), np.uint8)
    cv2.putText(img, text, (pad, pad + h), face, scale, 255, thick, cv2.LINE_AA if style.aa else cv2.LINE_8)
    m = img.astype(np.float64) / 255
    if not style.aa:  # OpenCV 5 antialiases putText even with LINE_8: aliased print is thresholded here
        m = (m >= 0.5).astype(np.float64)
    ys, xs = np.nonzero(m > 0.02)
    m = m[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return np.ascontiguousarray(np.rot90(m, style.turns))


def read(package: str, path: str) -> pydicom.Dataset:
    root = package_root(package)
    return pydicom.dcmread(root / path, force=True)


def original_boxes(path: str, frames_override=None) -> list[dict]:
    doc = json.loads(ANNOTATIONS.read_text())
    e = next(e for e in doc["files"] if e["path"] == path)
    return [dict(b, frames=frames_override if frames_override is not None else b["frames"]) for b in e["boxes"]]


def uid(seed: int, name: str, what: str) -> str:
    return pydicom.uid.generate_uid(entropy_srcs=[str(seed), "redteam4", name, what])


def colour_dataset(seed: int, name: str, modality: str, pixels: np.ndarray, sop: str, person: tuple[str, str],
                   extra: dict | None = None) -> Dataset:
    """8-bit RGB (frames, rows, cols, 3), interleaved, explicit VR little endian."""
    gray = pixels[..., 0]
    ds = mono_dataset(seed, name, modality, gray, sop=sop, bits_stored=8, person=person, extra=extra)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid(seed, name, "sop")
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.PixelData = np.clip(np.rint(pixels), 0, 255).astype(np.uint8).tobytes()
    return ds


def mono(seed: int, name: str, modality: str, pixels: np.ndarray, person: tuple[str, str], **kw) -> Dataset:
    sop = kw.pop("sop", SOP[modality])
    ds = mono_dataset(seed, name, modality, pixels, sop=sop, person=person, **kw)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid(seed, name, "sop")
    ds.StudyInstanceUID = uid(seed, name, "study")
    ds.SeriesInstanceUID = uid(seed, name, "series")
    return ds


# ------------------------------------------------------------------------------------ synthetic bases


def smooth_noise(rng: np.random.Generator, rows: int, cols: int, sigma: float) -> np.ndarray:
    small = rng.normal(0, 1, (max(8, int(rows / sigma)), max(8, int(cols / sigma)))).astype(np.float32)
    big = cv2.resize(small, (cols, rows), interpolation=cv2.INTER_CUBIC)
    return big / (big.std() + 1e-9)


def mammogram(rng: np.random.Generator, rows: int = 3328, cols: int = 2560, right: bool = False,
              top: int = 16383) -> tuple[np.ndarray, np.ndarray]:
    """A breast-like blob on dark air: chest wall on the left (right=False), fibroglandular texture."""
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cx = cols - 1 if right else 0
    a, b = 0.70 * cols, 0.42 * rows
    wobble = 1 + 0.04 * np.sin(yy / rows * 9.0)
    r = np.sqrt(((xx - cx) / (a * wobble)) ** 2 + ((yy - 0.5 * rows) / b) ** 2)
    mask = r < 1.0
    thickness = np.sqrt(np.clip(1 - r ** 2, 0, 1))
    tex = 0.6 * smooth_noise(rng, rows, cols, 120) + 0.3 * smooth_noise(rng, rows, cols, 30) + \
        0.1 * smooth_noise(rng, rows, cols, 6)
    dense = np.clip(0.5 + 0.18 * tex, 0, 1)
    tissue = top * (0.30 + 0.45 * np.clip(thickness * 1.6, 0, 1) * (0.45 + 0.55 * dense))
    air = top * 0.012 + rng.normal(0, top * 0.002, (rows, cols))
    img = np.where(mask, tissue, air)
    return np.clip(img, 0, top), mask


def us_frame(rng: np.random.Generator, rows: int = 600, cols: int = 800, header: int = 56) -> np.ndarray:
    """8-bit grey ultrasound: black chrome, a speckled sector below a header band."""
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    apex = (cols / 2, header + 10)
    ang = np.degrees(np.arctan2(xx - apex[0], yy - apex[1]))
    rad = np.hypot(xx - apex[0], yy - apex[1])
    sector = (np.abs(ang) < 38) & (rad < rows - header - 30) & (rad > 20)
    speckle = rng.rayleigh(1.0, (rows, cols)).astype(np.float32)
    speckle = cv2.GaussianBlur(speckle, (0, 0), 1.2)
    organ = 0.5 + 0.5 * smooth_noise(rng, rows, cols, 60)
    tissue = np.clip(55 * speckle * (0.6 + 0.5 * organ) * np.exp(-rad / 900), 0, 230)
    img = np.where(sector, tissue, rng.normal(3, 1.0, (rows, cols)))
    return np.clip(img, 0, 255)


# ------------------------------------------------------------------------------------------- cases


class Cases:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def who(self) -> tuple[str, str, str, str]:
        fam, giv = PEOPLE[self.rng.integers(len(PEOPLE))]
        pid = "".join(str(d) for d in self.rng.integers(0, 10, 9))
        y, m, d = int(self.rng.integers(1935, 2010)), int(self.rng.integers(1, 13)), int(self.rng.integers(1, 29))
        return fam, giv, pid, f"{y}-{m:02d}-{d:02d}"

    # ---- CT 512 (693_UNCI, signed, HU via rescale)
    def _ct(self):
        src = read("pydicom-data", "693_UNCI.dcm")
        px = src.pixel_array.astype(np.float64)[None]
        extra = {"RescaleIntercept": src.get("RescaleIntercept", 0), "RescaleSlope": src.get("RescaleSlope", 1),
                 "WindowCenter": 40, "WindowWidth": 400}
        return Canvas(px.copy()), extra, bool(src.PixelRepresentation == 1)

    def _ct_ds(self, name, c, extra, signed, person):
        return mono(self.seed, name, "CT", c.pixels, person, signed=signed, extra=extra)

    def ct_italic_triplex(self):
        c, extra, signed = self._ct()
        fam, giv, pid, dob = self.who()
        top = float(c.pixels.max())
        c.draw(f"{fam}, {giv}", "name", 6, 8, 14, top, Style("triplex", italic=True))
        c.draw(f"MRN {pid}", "id", 6, 30, 12, top, Style("complex", italic=True, aa=False))
        c.draw(dob, "date", 380, 488, 12, top, Style("duplex", italic=True))
        return self._ct_ds("ct_italic_triplex", c, extra, signed, (f"{fam}^{giv}", pid)), c.boxes, \
            "italic TRIPLEX / COMPLEX (aliased) / DUPLEX, 12-14 px, over air"

    def ct_script(self):
        c, extra, signed = self._ct()
        fam, giv, pid, dob = self.who()
        top = float(c.pixels.max())
        c.draw(f"{giv.title()} {fam.title()}", "name", 8, 6, 18, top, Style("script"))
        c.draw(f"born {dob}", "date", 300, 480, 16, top, Style("script2", thick=2))
        return self._ct_ds("ct_script", c, extra, signed, (f"{fam}^{giv}", pid)), c.boxes, \
            "cursive (SCRIPT SIMPLEX/COMPLEX) mixed case, 16-18 px"

    def ct_vertical(self):
        c, extra, signed = self._ct()
        fam, giv, pid, dob = self.who()
        top = float(c.pixels.max())
        c.draw(f"{fam} {giv}", "name", 2, 120, 12, top, Style("duplex", turns=1))
        c.draw(f"ID {pid}", "id", 496, 150, 11, top, Style("plain", turns=3))
        return self._ct_ds("ct_vertical", c, extra, signed, (f"{fam}^{giv}", pid)), c.boxes, \
            "vertical text along the left (bottom-to-top) and right (top-to-bottom) edges, 11-12 px"

    def ct_touching_skull(self):
        c, extra, signed = self._ct()
        fam, giv, pid, dob = self.who()
        img = c.pixels[0]
        # the first row where the head starts on the image's middle column: text sits right above it
        body = np.nonzero(img[:, 256] > np.percentile(img, 60))[0]
        y = int(body.min()) if body.size else 60
        top = float(img.max())
        c.draw(f"{fam}^{giv}", "name", 150, max(0, y - 15), 14, top, Style("complex"))
        mid = float(np.median(img[200:300, 200:300]))
        c.draw(pid, "id", 190, 250, 14, mid + 90, Style("duplex"))  # over brain, +90 stored levels
        return self._ct_ds("ct_touching_skull", c, extra, signed, (f"{fam}^{giv}", pid)), c.boxes, \
            "name touching the top of the head; an ID over brain tissue 90 levels above it"

    def ct_edge_cut(self):
        c, extra, signed = self._ct()
        fam, giv, pid, dob = self.who()
        top = float(c.pixels.max())
        c.draw(f"{fam} {giv}", "name", 100, -6, 16, top, Style("duplex"), clip=True)  # top 6 px cut off
        c.draw(dob, "date", 440, 300, 16, top, Style("duplex"), clip=True)  # runs off the right edge
        return self._ct_ds("ct_edge_cut", c, extra, signed, (f"{fam}^{giv}", pid)), c.boxes, \
            "text cut by the top border and by the right border"

    def ct_letterspaced(self):
        c, extra, signed = self._ct()
        fam, giv, pid, dob = self.who()
        top = float(c.pixels.max())
        spaced = "  ".join(" ".join(w) for w in (giv, fam.replace(" ", "")))
        c.draw(spaced[:48], "name", 4, 4, 10, top, Style("plain", aa=False))
        c.draw(f"{giv.lower()} {fam.lower()}", "name", 4, 490, 12, top, Style("small"))
        return self._ct_ds("ct_letterspaced", c, extra, signed, (f"{fam}^{giv}", pid)), c.boxes, \
            "letter-spaced capitals (J O H N   S M I T H), aliased PLAIN 10 px; lower case name"

    def ct128_digits(self):
        src = read("pydicom", "CT_small.dcm")
        px = src.pixel_array.astype(np.float64)[None]
        c = Canvas(px.copy())
        fam, giv, pid, dob = self.who()
        top = float(px.max())
        c.draw(dob, "date", 2, 2, 5, top, Style("plain", aa=False, thick=1))
        c.draw(pid, "id", 60, 120, 6, top, Style("simplex", thick=1))
        ds = mono(self.seed, "ct128_digits", "CT", c.pixels, (f"{fam}^{giv}", pid), signed=True,
                  extra={"RescaleIntercept": src.RescaleIntercept, "RescaleSlope": src.RescaleSlope})
        return ds, c.boxes, "128x128 CT: digits only, 5 px aliased date, 6 px ID"

    # ---- MR 1024 (MR2_UNCI)
    def _mr(self):
        src = read("pydicom-data", "MR2_UNCI.dcm")
        return Canvas(src.pixel_array.astype(np.float64)[None].copy())

    def mr_four_lines(self):
        c = self._mr()
        fam, giv, pid, dob = self.who()
        top = float(np.percentile(c.pixels, 99.5))
        lines = [(f"{fam}, {giv}", "name"), (f"PID: {pid}", "id"), (f"DOB {dob}", "date"), (SITES[0], "institution")]
        for i, (t, k) in enumerate(lines):
            c.draw(t, k, 640, 880 + i * 30, 18, top, Style("complex", thick=1))
        return mono(self.seed, "mr_four_lines", "MR", c.pixels, (f"{fam}^{giv}", pid)), c.boxes, \
            "four-line block, hairline COMPLEX 18 px, bottom right"

    def mr_heavy_and_hairline(self):
        c = self._mr()
        fam, giv, pid, dob = self.who()
        top = float(np.percentile(c.pixels, 99.5))
        c.draw(f"{fam} {giv}", "name", 20, 20, 22, top, Style("simplex", thick=5))  # blobs
        c.draw(f"{dob} 14:32", "date", 20, 960, 44, top, Style("triplex", thick=1, aa=False))  # hairline
        return mono(self.seed, "mr_heavy_and_hairline", "MR", c.pixels, (f"{fam}^{giv}", pid)), c.boxes, \
            "heavy strokes (5 px at 22 px) and a 1-px aliased 44 px line"

    def mr_lowcontrast(self):
        c = self._mr()
        fam, giv, pid, dob = self.who()
        img = c.pixels[0]
        air = float(np.median(img[:40, :200]))
        c.draw(f"{fam} {giv}", "name", 30, 30, 24, air + 25, Style("duplex"))
        c.draw(pid, "id", 30, 80, 24, air + 12, Style("duplex", thick=3))
        mid = float(np.median(img[480:540, 480:540]))
        c.draw(dob, "date", 420, 500, 24, mid + 30, Style("duplex", thick=3))
        return mono(self.seed, "mr_lowcontrast", "MR", c.pixels, (f"{fam}^{giv}", pid)), c.boxes, \
            "25 and 12 levels above air; 30 levels above tissue in the middle"

    def mr12_above_window(self):
        c = self._mr()
        c.pixels = np.clip(c.pixels * (4095 / max(1.0, float(c.pixels.max()))), 0, 4095)
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam}^{giv}", "name", 30, 40, 20, 4095, Style("complex"))
        c.draw(pid, "id", 30, 980, 20, 2600, Style("complex"))
        c.draw(f"{dob}", "date", 700, 980, 20, 3300, Style("small"))
        ds = mono(self.seed, "mr12_above_window", "MR", c.pixels, (f"{fam}^{giv}", pid), bits_stored=12,
                  extra={"WindowCenter": 700, "WindowWidth": 1000})
        return ds, c.boxes, "12-bit MR windowed 200..1200; text at 2600/3300/4095, all above the window top"

    def mr_middle_lower(self):
        c = self._mr()
        fam, giv, pid, dob = self.who()
        top = float(np.percentile(c.pixels, 99.9))
        c.draw(f"pt: {giv.lower()} {fam.lower()}", "name", 330, 500, 20, top, Style("small"))
        c.draw(f"acc a{pid[:6]}  {dob}", "id", 330, 540, 20, top, Style("small", italic=True))
        return mono(self.seed, "mr_middle_lower", "MR", c.pixels, (f"{fam}^{giv}", pid)), c.boxes, \
            "lower case, two lines in the middle of the image over anatomy"

    # ---- CR MONOCHROME1
    def cr_m1_label(self):
        src = read("pydicom-data", "RG1_UNCI.dcm")
        px = src.pixel_array.astype(np.float64)[None]
        c = Canvas(px.copy())
        fam, giv, pid, dob = self.who()
        lo, hi = float(px.min()), float(px.max())
        c.plate(1300, 60, 1800, 200, lo + 0.05 * (hi - lo))  # MONOCHROME1: low stored = bright on screen
        c.draw(f"{fam}", "name", 1320, 80, 36, hi, Style("triplex"))  # dark glyphs on a bright plate
        c.draw(f"{dob}", "date", 1320, 140, 36, hi, Style("triplex"))
        c.draw(f"{giv} {fam}", "name", 1800, 700, 28, lo, Style("duplex", turns=3))
        ds = mono(self.seed, "cr_m1_label", "CR", c.pixels, (f"{fam}^{giv}", pid), photometric="MONOCHROME1",
                  bits_stored=int(src.BitsStored))
        return ds, c.boxes, "MONOCHROME1: dark text on a bright label plate; vertical white name on the right edge"

    def cr_m1_marker_name(self):
        src = read("pydicom-data", "RG3_UNCI.dcm")
        px = src.pixel_array.astype(np.float64)[None]
        c = Canvas(px.copy())
        fam, giv, pid, dob = self.who()
        hi = float(px.max())  # MONOCHROME1: the highest stored value is black on the white background there
        c.draw(f"{fam} {giv}", "name", 60, 1600, 30, hi, Style("complex", italic=True))
        c.draw(f"{pid}", "id", 60, 1650, 30, hi, Style("plain", aa=False))
        boxes = original_boxes("RG3_UNCI.dcm") + c.boxes
        ds = mono(self.seed, "cr_m1_marker_name", "CR", c.pixels, (f"{fam}^{giv}", pid), photometric="MONOCHROME1",
                  bits_stored=int(src.BitsStored))
        return ds, boxes, "RG3 leg CR (own 'R' marker) + black italic name and aliased ID on the white bottom left"

    # ---- mammograms (synthetic, 3328x2560)
    def _mg(self, right=False, top=16383):
        img, mask = mammogram(self.rng, right=right, top=top)
        return Canvas(img[None].copy()), mask

    def _mg_ds(self, name, c, person, lat="L", view="CC", bits=14, photometric="MONOCHROME2"):
        return mono(self.seed, name, "MG", c.pixels, person, bits_stored=bits, photometric=photometric,
                    extra={"ImageLaterality": lat, "ViewPosition": view, "PresentationIntentType": "FOR PRESENTATION"})

    def mg_label_and_name(self):
        c, _ = self._mg()
        fam, giv, pid, dob = self.who()
        c.draw("L CC", "laterality", 1900, 80, 60, 16383, Style("duplex", thick=5), cls="label")
        c.draw(f"{fam}, {giv}", "name", 2120, 80, 40, 16383, Style("duplex", thick=3), clip=True)
        c.draw("L CC", "laterality", 1950, 3150, 50, 16383, Style("triplex", thick=4), cls="label")
        return self._mg_ds("mg_label_and_name", c, (f"{fam}^{giv}", pid)), c.boxes, \
            "'L CC' with a name on the same line after it (name runs to the edge); 'L CC' alone at the bottom"

    def mg_touching_edge(self):
        c, mask = self._mg()
        fam, giv, pid, dob = self.who()
        row = 1664 - 300
        edge = int(np.nonzero(mask[row])[0].max())
        c.draw(f"{fam} {giv}", "name", edge + 1, row, 34, 16383, Style("complex", thick=3), clip=True)
        row2 = 1664 + 400
        edge2 = int(np.nonzero(mask[row2])[0].max())
        c.draw(pid, "id", edge2 - 120, row2, 34, 16383, Style("complex", thick=3), clip=True)
        return self._mg_ds("mg_touching_edge", c, (f"{fam}^{giv}", pid)), c.boxes, \
            "a name starting at the skin line; an ID straddling it (its first digits over tissue)"

    def mg_tissue_lowcontrast(self):
        c, mask = self._mg()
        fam, giv, pid, dob = self.who()
        y, x = 1500, 300
        base = float(np.median(c.pixels[0, y:y + 40, x:x + 600]))
        c.draw(f"{fam} {giv}", "name", x, y, 40, base + 30 * 4, Style("duplex", thick=4))  # 14-bit: +120 = 30 on 12
        c.draw(dob, "date", x, y + 200, 40, base - 30 * 4, Style("duplex", thick=4))
        return self._mg_ds("mg_tissue_lowcontrast", c, (f"{fam}^{giv}", pid)), c.boxes, \
            "bright and dark text over dense tissue, 120 stored levels (30 at 12 bits) from it"

    def mg_small_text(self):
        c, _ = self._mg()
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam}^{giv}", "name", 2100, 40, 10, 16383, Style("plain", thick=1))
        c.draw(pid, "id", 2100, 60, 12, 16383, Style("simplex", thick=1))
        c.draw(dob, "date", 2100, 3290, 14, 16383, Style("complex", thick=1))
        return self._mg_ds("mg_small_text", c, (f"{fam}^{giv}", pid)), c.boxes, \
            "10-14 px hairline text on a 3328x2560 mammogram (3-4 px at the scanner's 1024 px)"

    def mg_two_lines_16px(self):
        c, _ = self._mg()
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam}, {giv}", "name", 2050, 40, 16, 16383, Style("duplex", thick=2))
        c.draw(f"{pid} {dob}", "id", 2050, 66, 16, 16383, Style("duplex", thick=2))
        c.draw(f"{giv} {fam}", "name", 2050, 3260, 18, 9000, Style("complex", thick=2))  # grey, not white
        return self._mg_ds("mg_two_lines_16px", c, (f"{fam}^{giv}", pid)), c.boxes, \
            "a two-line 16 px block (top right) and an 18 px grey line (bottom right) on a 3328x2560 mammogram"

    def mg_four_line_inverted(self):
        c, _ = self._mg(right=True)
        fam, giv, pid, dob = self.who()
        c.plate(40, 2900, 900, 3200, 14000)
        lines = [(f"{fam} {giv}", "name"), (f"MRN {pid}", "id"), (f"{dob}  09:14:55", "date"), (SITES[1], "institution")]
        for i, (t, k) in enumerate(lines):
            c.draw(t, k, 60, 2920 + i * 68, 38, 800, Style("triplex", thick=3))
        return self._mg_ds("mg_four_line_inverted", c, (f"{fam}^{giv}", pid), lat="R", view="MLO"), c.boxes, \
            "four lines of dark text on a bright label plate, bottom left (breast on the right)"

    def mg_vertical_and_script(self):
        c, _ = self._mg(right=True)
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam} {giv} {dob}", "name", 10, 900, 36, 16383, Style("duplex", thick=3, turns=1))
        c.draw(f"{giv.title()} {fam.title()}", "name", 120, 200, 60, 16383, Style("script", thick=4))
        c.draw("R MLO", "laterality", 120, 3100, 60, 16383, Style("duplex", thick=5), cls="label")
        return self._mg_ds("mg_vertical_and_script", c, (f"{fam}^{giv}", pid), lat="R", view="MLO"), c.boxes, \
            "vertical name+date along the left edge; 60 px cursive name; 'R MLO' label"

    def mg_middle_spaced_digits(self):
        c, _ = self._mg()
        fam, giv, pid, dob = self.who()
        c.draw(" ".join(fam.replace(" ", "")), "name", 200, 1600, 30, 16383, Style("complex", thick=3))
        c.draw(pid, "id", 1900, 200, 45, 16383, Style("duplex", thick=4))
        c.draw(dob, "date", 1900, 3100, 45, 16383, Style("duplex", thick=4))
        return self._mg_ds("mg_middle_spaced_digits", c, (f"{fam}^{giv}", pid)), c.boxes, \
            "letter-spaced surname across the middle of the breast; digits-only ID and date over air"

    def mg_monochrome1(self):
        c, mask = self._mg(top=4095)
        c.pixels = 4095 - c.pixels  # MONOCHROME1: dense tissue = low stored value
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam}, {giv}", "name", 1700, 100, 40, 0, Style("triplex", italic=True, thick=3))
        c.draw(f"{pid}  {dob}", "id", 1700, 160, 40, 0, Style("triplex", italic=True, thick=3))
        c.draw(f"{dob}", "date", 1500, 3260, 40, 0, Style("complex", thick=3), clip=True)  # cut by the bottom
        return self._mg_ds("mg_monochrome1", c, (f"{fam}^{giv}", pid), bits=12, photometric="MONOCHROME1"), \
            c.boxes, "12-bit MONOCHROME1 mammogram, italic text (white on screen); a date cut by the bottom edge"

    def mg_clean(self):
        c, _ = self._mg()
        fam, giv, pid, dob = self.who()
        return self._mg_ds("mg_clean", c, (f"{fam}^{giv}", pid)), c.boxes, "no text at all (damage only)"

    # ---- ultrasound (synthetic 800x600, grey and RGB)
    def us_header_plain(self):
        c = Canvas(us_frame(self.rng)[None].copy())
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam}, {giv}", "name", 8, 6, 9, 220, Style("plain", aa=False, thick=1))
        c.draw(f"{pid}", "id", 300, 6, 9, 220, Style("plain", aa=False, thick=1))
        c.draw(f"{dob} 11:02:43", "date", 600, 6, 9, 220, Style("plain", aa=False, thick=1))
        c.draw(SITES[2], "institution", 8, 24, 9, 150, Style("plain", aa=False, thick=1))
        c.draw("C5-1 ABD 4.5cm 27Hz", "technical", 8, 570, 9, 200, Style("plain", aa=False, thick=1))
        return mono(self.seed, "us_header_plain", "US", c.pixels, (f"{fam}^{giv}", pid), bits_stored=8), c.boxes, \
            "8-bit grey US, aliased PLAIN 9 px header lines, no ultrasound regions"

    def us_colour_text(self):
        g = us_frame(self.rng)
        c = Canvas(np.stack([g] * 3, axis=-1)[None].copy())
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam} {giv}", "name", 10, 8, 14, (230, 230, 40), Style("duplex"))  # yellow
        c.draw(f"ID {pid}", "id", 520, 8, 14, (40, 220, 60), Style("duplex"))  # green
        c.draw(dob, "date", 10, 30, 14, (40, 220, 230), Style("small"))  # cyan
        c.draw(f"{giv} {fam}".lower(), "name", 330, 300, 16, (230, 230, 40), Style("complex"))  # yellow over the sector
        ds = colour_dataset(self.seed, "us_colour_text", "US", c.pixels, SOP["US"], (f"{fam}^{giv}", pid))
        return ds, c.boxes, "grey-looking RGB US: yellow, green, cyan text in the header and yellow inside the sector"

    def us_lowcontrast_vertical(self):
        c = Canvas(us_frame(self.rng)[None].copy())
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam} {giv}", "name", 20, 10, 16, 3 + 20, Style("duplex"))  # 20 levels above the black chrome
        c.draw(f"{pid}", "id", 780, 150, 12, 200, Style("simplex", turns=3))
        c.draw(dob, "date", 4, 200, 12, 200, Style("simplex", turns=1))
        return mono(self.seed, "us_lowcontrast_vertical", "US", c.pixels, (f"{fam}^{giv}", pid), bits_stored=8), \
            c.boxes, "name 20 levels above black; vertical ID and date along the right and left edges"

    def us_regions_text_inside(self):
        c = Canvas(us_frame(self.rng)[None].copy())
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam} {giv}", "name", 10, 8, 14, 200, Style("complex"))
        c.draw(f"{dob}", "date", 320, 330, 18, 240, Style("triplex"))  # inside the data region
        region = Dataset()
        region.RegionSpatialFormat = 1
        region.RegionDataType = 1
        region.RegionFlags = 0
        region.RegionLocationMinX0, region.RegionLocationMinY0 = 150, 60
        region.RegionLocationMaxX1, region.RegionLocationMaxY1 = 650, 560
        region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3
        region.PhysicalDeltaX = region.PhysicalDeltaY = 0.02
        ds = mono(self.seed, "us_regions_text_inside", "US", c.pixels, (f"{fam}^{giv}", pid), bits_stored=8,
                  extra={"SequenceOfUltrasoundRegions": [region]})
        return ds, c.boxes, "SequenceOfUltrasoundRegions present; a date written inside the data region"

    def us_multiframe_last(self):
        frames = np.stack([us_frame(self.rng) for _ in range(6)])
        c = Canvas(frames.copy())
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam} {giv}", "name", 500, 8, 12, 210, Style("duplex"), frames=[5])
        c.draw(pid, "id", 340, 250, 16, 230, Style("complex", italic=True), frames=[5])
        ds = mono(self.seed, "us_multiframe_last", "US", c.pixels, (f"{fam}^{giv}", pid), bits_stored=8,
                  sop=SOP["USMF"], extra={"FrameTime": 33.3})
        return ds, c.boxes, "6-frame grey US cine; name and ID burned into the last frame only"

    def us_label_boxes(self):
        g = us_frame(self.rng)
        c = Canvas(np.stack([g] * 3, axis=-1)[None].copy())
        fam, giv, pid, dob = self.who()
        c.plate(10, 4, 330, 30, (30, 60, 160))  # a blue label box
        c.draw(f"{fam} {giv}", "name", 16, 10, 13, (255, 255, 255), Style("duplex"))
        c.plate(560, 4, 790, 30, (150, 150, 150))  # a grey one
        c.draw(f"MRN {pid}", "id", 566, 10, 13, (0, 0, 0), Style("complex"))
        c.plate(10, 560, 260, 590, (200, 40, 40))  # a red one
        c.draw(dob, "date", 16, 567, 14, (255, 255, 0), Style("triplex"))
        ds = colour_dataset(self.seed, "us_label_boxes", "US", c.pixels, SOP["US"], (f"{fam}^{giv}", pid))
        return ds, c.boxes, "RGB US: white name on a blue label box, black ID on grey, yellow date on red"

    def us_clean(self):
        c = Canvas(us_frame(self.rng)[None].copy())
        return mono(self.seed, "us_clean", "US", c.pixels, ("CLEAN^US", "0"), bits_stored=8), c.boxes, \
            "synthetic US without any text (damage only)"

    # ---- real colour / palette / multi-frame bases
    def us1_rgb_extra(self):
        src = read("pydicom-data", "US1_UNCR.dcm")
        c = Canvas(src.pixel_array.astype(np.float64)[None].copy())
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam} {giv}", "name", 200, 440, 13, (255, 255, 0), Style("triplex"))
        c.draw(pid, "id", 620, 100, 12, (0, 255, 255), Style("duplex", turns=3))
        boxes = original_boxes("US1_UNCR.dcm", frames_override="all") + c.boxes
        ds = colour_dataset(self.seed, "us1_rgb_extra", "US", c.pixels, SOP["US"], (f"{fam}^{giv}", pid))
        return ds, boxes, "GE US1 RGB (its own text) + yellow name at the bottom, cyan vertical ID on the right"

    def palette_face(self):
        src = read("pydicom-data", "OT-PAL-8-face.dcm")
        src.file_meta = pydicom.dataset.FileMetaDataset()
        src.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian  # no file meta in this file
        px = src.pixel_array.astype(np.float64)[None]
        c = Canvas(px.copy())
        lut = pydicom.pixels.apply_color_lut(np.arange(256, dtype=np.uint8), src).astype(np.float64)
        bright = int(np.argmax(lut.sum(axis=-1)))
        dark = int(np.argmin(lut.sum(axis=-1)))
        fam, giv, pid, dob = self.who()
        c.draw(f"{giv.lower()} {fam.lower()}", "name", 20, 20, 16, bright, Style("complex", aa=False))
        c.draw(dob, "date", 20, 440, 16, dark, Style("duplex", aa=False))
        extra = {k: src[k].value for k in ("RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
                                           "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
                                           "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData")}
        ds = mono(self.seed, "palette_face", "OT", c.pixels, (f"{fam}^{giv}", pid), bits_stored=8,
                  photometric="PALETTE COLOR", extra=extra)
        for k in extra:
            if k.endswith("Data"):
                ds[k].VR = "OW"
        return ds, c.boxes, "PALETTE COLOR face photo; lower-case name in the brightest entry, date in the darkest"

    def cine_last_frame(self):
        src = read("deid-data", "ultrasounds/ultrasound-multiframe.dcm")
        px = src.pixel_array.astype(np.float64)
        px = px[:8]  # 8 of the 30 frames keep the set small
        c = Canvas(px.copy())
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam}, {giv}", "name", 280, 20, 14, (255, 255, 255), Style("complex"), frames=[7])
        c.draw(dob, "date", 330, 300, 16, (255, 255, 0), Style("duplex"), frames=[7])
        boxes = original_boxes("ultrasounds/ultrasound-multiframe.dcm") + c.boxes
        ds = colour_dataset(self.seed, "cine_last_frame", "US", c.pixels, SOP["USMF"], (f"{fam}^{giv}", pid),
                            extra={"NumberOfFrames": 8, "FrameTime": 33.3})
        return ds, boxes, "Philips echo cine (8 frames, own parameter text); name and date on the last frame only"

    def mr_multiframe_last(self):
        src = read("pydicom-data", "emri_small.dcm")
        arr = src.pixel_array.astype(np.float32)
        px = np.stack([cv2.resize(f, (320, 320), interpolation=cv2.INTER_CUBIC) for f in arr]).astype(np.float64)
        px = np.clip(px, 0, None)
        c = Canvas(px.copy())
        fam, giv, pid, dob = self.who()
        top = float(px.max())
        n = px.shape[0]
        c.draw(f"{fam} {giv}", "name", 6, 300, 11, top, Style("script", thick=1), frames=[n - 1])
        c.draw(pid, "id", 200, 6, 10, top, Style("small"), frames=[n - 1])
        return mono(self.seed, "mr_multiframe_last", "MR", c.pixels, (f"{fam}^{giv}", pid)), c.boxes, \
            "10-frame MR; cursive name and ID on the last frame only"

    def photo_rgb_green(self):
        src = read("deid-data", "dicom-cookies/image1.dcm")
        arr = src.pixel_array  # pydicom 3 converts YBR_FULL_422 to RGB already
        small = cv2.resize(arr, (1024, 768), interpolation=cv2.INTER_AREA).astype(np.float64)
        c = Canvas(small[None].copy())
        fam, giv, pid, dob = self.who()
        c.draw(f"{fam} {giv}", "name", 40, 700, 24, (0, 255, 0), Style("duplex", thick=2))
        c.draw(dob, "date", 700, 30, 24, (0, 255, 255), Style("triplex", italic=True))
        ds = colour_dataset(self.seed, "photo_rgb_green", "OT", c.pixels, SOP["OT"], (f"{fam}^{giv}", pid))
        return ds, c.boxes, "dicom-cookies photo as RGB 1024x768; green name, cyan italic date"


CASES = [n for n in vars(Cases) if not n.startswith("_") and n not in ("who",)]


def generate(out: Path, seed: int = DEFAULT_SEED, only: str = "") -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, name in enumerate(CASES):
        if only and only not in name:
            continue
        ds, boxes, note = getattr(Cases(seed + i), name)()
        entries.append(write_case(out, name, ds, boxes, note))
    write_truth(out, seed, "bench/redteam/make_planted.py", entries)
    return entries


def write_case(out: Path, name: str, ds: Dataset, boxes: list[dict], note: str) -> dict:
    """Save one planted case as OUT/<name>.dcm; its truth.json entry (make_hard_cases.py's schema)."""
    path = out / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return {"name": name, "file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "modality": ds.Modality, "photometric": ds.PhotometricInterpretation, "rows": ds.Rows,
            "cols": ds.Columns, "frames": int(ds.get("NumberOfFrames", 1) or 1), "decodable": True,
            "no_text": not boxes, "boxes": boxes, "note": note}


def write_truth(out: Path, seed: int, generator: str, entries: list[dict]) -> None:
    """OUT/truth.json: the seed (evaluate.py regenerates the cases when it differs), the generator and the cases."""
    (out / "truth.json").write_text(json.dumps({"seed": seed, "generator": generator, "cases": entries},
                                               indent=1) + "\n")


def write_cases(out: Path, seed: int, generator: str, cases: list[tuple[str, Dataset, list[dict], str]],
                only: str = "", width: int = 34) -> None:
    """Save the (name, dataset, boxes, note) cases whose name contains `only`, each listed with its note, and their
    truth.json: the one writer of the variant generators (variants.py, us_vertical.py)."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, ds, boxes, note in cases:
        if only not in name:
            continue
        entries.append(write_case(out, name, ds, boxes, note))
        print(f"{name:{width}s} {note}")
    write_truth(out, seed, generator, entries)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    for e in generate(args.out, args.seed, args.only):
        print(f"{e['name']:26s} {e['modality']} {e['photometric']:12s} {e['cols']}x{e['rows']}x{e['frames']} "
              f"{sum(b['cls'] == 'phi' for b in e['boxes'])} PHI, {sum(b['cls'] == 'label' for b in e['boxes'])} labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
