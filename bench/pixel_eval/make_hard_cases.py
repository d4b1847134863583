"""Generated hard cases for the pixel benchmark: burned-in text where detectors fail, on real anatomy.

    .venv/bin/python bench/pixel_eval/make_hard_cases.py OUT_DIR [--seed 20261201]

Writes OUT_DIR/<case>.dcm and OUT_DIR/truth.json (same box schema as annotations.json). Deterministic:
the same seed gives the same files byte for byte (fixed UIDs, no timestamps). Backgrounds are real
pictures from the installed test-data packages (CT_small, 693_UNCI CT, MR2 shoulder, RG1 chest CR,
emri_small MR, the Philips OB ultrasound); the mammograms are a breast outline filled with the RG1
chest texture, since no package ships a mammogram. Text is drawn with two font families that every
machine has (Pillow's bundled FreeType font and OpenCV's Hershey stroke font), anti-aliased, and each
ground-truth box is the drawn glyphs' own bounding box (+1 px), not the requested position.

What each case stresses (the failures seen on public data, issue 12):
  ct128_tiny          128x128 CT, name/ID/date with 6-7 px glyphs over tissue
  mr1024_sizes        one name per text height 6..40 px on a 1024 MR, over air and over tissue
  ct512_block         6-line block (name, ID, DOB, accession, institution, physician) beside the skull
  mg_corner3          3 lines (name, ID, date) in a mammogram corner + authorised "R MLO" label
  mg_window           12-bit: text on a plate above the VOI window top (white-on-white when windowed)
                      and low-contrast text inside the window (invisible at full range)
  mg_tissue           name and ID written over breast tissue
  mg_labels           authorised "L CC" kept, "L CC SMITH" (label + name) must be masked
  mg_4096             17 px text on a 4096x3328 mammogram
  palette_us          Philips OB PALETTE COLOR frame plus a new name/DOB in the dark area
  mr_bigendian        Explicit VR Big Endian 16-bit MR with name/ID/date
  mr_multiframe       10-frame MR, name on every frame, a date on frame 5 only
  pm_float            FloatPixelData (parametric map) with name/date
  cr_monochrome1      MONOCHROME1 chest CR, name/date drawn as white (low stored values)
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
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_color_lut
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataset import package_root  # noqa: E402

DEFAULT_SEED = 20261201
FAMILIES = ["SMITH", "JOHNSON", "NGUYEN", "GARCIA", "KOWALSKI", "OKAFOR", "LINDQVIST", "MORENO", "TANAKA", "BRENNAN"]
GIVEN = ["MARY", "JAMES", "ANNA", "DAVID", "FATIMA", "PETER", "LUCIA", "HENRY", "SARAH", "OMAR"]
INSTITUTIONS = ["ST MARY GENERAL HOSP", "NORTHSIDE IMAGING CTR", "RIVERVIEW MEDICAL"]
PHYSICIANS = ["DR A. WEXLER", "DR K. OSEI", "DR M. LAURENT"]


@dataclass
class Text:
    text: str
    kind: str
    cls: str = "phi"


@dataclass
class Canvas:
    """A float image being drawn on, with the ground truth collected as text is added."""

    pixels: np.ndarray  # (frames, rows, cols) float64 stored values
    boxes: list[dict] = field(default_factory=list)

    def draw(self, t: Text, x: int, y: int, height: int, value: float, font: str = "pil",
             frames: list[int] | str = "all") -> None:
        mask = glyph_mask(t.text, height, font)
        h, w = mask.shape
        rows, cols = self.pixels.shape[1:3]
        if y + h > rows or x + w > cols:
            raise ValueError(f"{t.text!r} ({height} px) does not fit at {x},{y} in {cols}x{rows}")
        targets = range(self.pixels.shape[0]) if frames == "all" else frames
        for i in targets:
            region = self.pixels[i, y:y + h, x:x + w]
            self.pixels[i, y:y + h, x:x + w] = region * (1 - mask) + value * mask
        ys, xs = np.nonzero(mask > 0.25)
        box = [x + int(xs.min()) - 1, y + int(ys.min()) - 1, x + int(xs.max()) + 2, y + int(ys.max()) + 2]
        box = [max(0, box[0]), max(0, box[1]), min(cols, box[2]), min(rows, box[3])]
        self.boxes.append({"cls": t.cls, "kind": t.kind, "text": t.text, "box": box, "frames": frames,
                           "height_px": height})


def glyph_mask(text: str, height: int, font: str) -> np.ndarray:
    """Anti-aliased coverage (0..1) of `text` whose capital letters are `height` px tall."""
    if font == "pil":
        f = ImageFont.load_default(size=max(4, round(height / 0.72)))
        x0, y0, x1, y1 = f.getbbox(text)
        img = Image.new("L", (x1 + 4, y1 + 4))
        ImageDraw.Draw(img).text((2, 2), text, font=f, fill=255)
        m = np.asarray(img, dtype=np.float64) / 255
    else:  # OpenCV Hershey simplex: cap height ~ 22 px at scale 1
        scale = height / 22.0
        thick = max(1, round(height / 10))
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        img = np.zeros((h + base + 4, w + 4), np.uint8)
        cv2.putText(img, text, (2, h + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
        m = img.astype(np.float64) / 255
    ys, xs = np.nonzero(m > 0.02)
    return m[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def stored(path_in_package: tuple[str, str]) -> pydicom.Dataset:
    package, path = path_in_package
    return pydicom.dcmread(package_root(package) / path)


def resize(img: np.ndarray, rows: int, cols: int) -> np.ndarray:
    return cv2.resize(img.astype(np.float32), (cols, rows), interpolation=cv2.INTER_CUBIC).astype(np.float64)


def breast(rows: int, cols: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 12-bit mammogram-like frame (chest wall on the left) and its breast mask."""
    chest = stored(("pydicom-data", "RG1_UNCI.dcm")).pixel_array.astype(np.float64)
    chest = chest.max() - chest  # MONOCHROME1 -> dense = bright
    tex = chest[300:1600, 250:1600]
    tex = (tex - tex.min()) / (np.ptp(tex) + 1e-9)
    tex = resize(tex, rows, cols)
    yy, xx = np.mgrid[0:rows, 0:cols]
    a, b = 0.78 * cols, 0.44 * rows
    r = np.sqrt((xx / a) ** 2 + ((yy - rows * 0.52) / b) ** 2)
    mask = r < 1.0
    thickness = np.clip(np.sqrt(np.clip(1 - r ** 2, 0, 1)), 0, 1)
    img = 90 + rng.normal(0, 12, (rows, cols))
    tissue = 900 + 1300 * thickness * (0.55 + 0.45 * tex)
    img = np.where(mask, tissue, img)
    return np.clip(img, 0, 4095), mask


def uid(seed: int, name: str, what: str) -> str:
    return generate_uid(entropy_srcs=[str(seed), name, what])


def dataset(seed: int, name: str, modality: str, pixels: np.ndarray, *, sop: str, photometric: str = "MONOCHROME2",
            bits_stored: int = 16, signed: bool = False, big_endian: bool = False, float_data: bool = False,
            person: tuple[str, str] = ("", ""), extra: dict | None = None) -> Dataset:
    frames, rows, cols = pixels.shape[:3]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = uid(seed, name, "sop")
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian if big_endian else ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.999.1"
    ds.SOPClassUID = sop
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uid(seed, name, "study")
    ds.SeriesInstanceUID = uid(seed, name, "series")
    ds.Modality = modality
    ds.PatientName = person[0]
    ds.PatientID = person[1]
    ds.StudyDate = "20190312"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BurnedInAnnotation = "YES"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    if frames > 1 or float_data:
        ds.NumberOfFrames = frames
    for k, v in (extra or {}).items():
        setattr(ds, k, v)
    if float_data:
        ds.BitsAllocated = 32
        ds.FloatPixelData = pixels.astype("<f4").tobytes()
        return ds
    ds.BitsAllocated = 8 if bits_stored <= 8 else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    dtype = {(8, False): "u1", (16, False): "u2", (16, True): "i2"}[(ds.BitsAllocated, signed)]
    lo, hi = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2 ** bits_stored - 1)
    arr = np.clip(np.rint(pixels), lo, hi).astype(dtype)
    ds.PixelData = arr.astype((">" if big_endian else "<") + dtype).tobytes()
    ds["PixelData"].VR = "OW" if ds.BitsAllocated > 8 else "OB"
    return ds


class Cases:
    """One method per case; each returns (dataset, boxes, note)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def person(self) -> tuple[str, str, str, str]:
        fam = FAMILIES[self.rng.integers(len(FAMILIES))]
        giv = GIVEN[self.rng.integers(len(GIVEN))]
        pid = "".join(str(d) for d in self.rng.integers(0, 10, 8))
        date = f"{self.rng.integers(1, 29):02d}/{self.rng.integers(1, 13):02d}/{self.rng.integers(1940, 2005)}"
        return fam, giv, pid, date

    def ct128_tiny(self):
        src = stored(("pydicom", "CT_small.dcm"))
        px = src.pixel_array.astype(np.float64)[None]
        c = Canvas(px.copy())
        fam, giv, pid, dob = self.person()
        top = float(px.max())
        c.draw(Text(f"{fam}^{giv}"[:12], "name"), 2, 2, 6, top)
        c.draw(Text(pid, "id"), 2, 11, 6, top)
        c.draw(Text(dob, "date"), 70, 118, 7, top, font="cv2")
        ds = dataset(self.seed, "ct128_tiny", "CT", c.pixels, sop="1.2.840.10008.5.1.4.1.1.2", signed=True,
                     person=(f"{fam}^{giv}", pid), extra={"RescaleIntercept": src.RescaleIntercept,
                                                          "RescaleSlope": src.RescaleSlope,
                                                          "WindowCenter": 40, "WindowWidth": 400})
        return ds, c.boxes, "128x128 CT, 6-7 px glyphs over tissue"

    def mr1024_sizes(self):
        src = stored(("pydicom-data", "MR2_UNCI.dcm"))
        px = src.pixel_array.astype(np.float64)[None]
        c = Canvas(px.copy())
        top = float(np.percentile(px, 99.9))
        heights = [6, 8, 10, 12, 14, 17, 20, 24, 30, 40]
        y = 8
        for i, h in enumerate(heights):
            fam, giv, pid, _ = self.person()
            font = "pil" if i % 2 == 0 else "cv2"
            c.draw(Text(f"{fam} {giv} {pid[:4]}", "name"), 8 if i < 6 else 300, y, h, top, font=font)
            y += h + max(6, h // 2)
            if i == 5:
                y = 620  # the larger sizes go over the humerus and soft tissue
        ds = dataset(self.seed, "mr1024_sizes", "MR", c.pixels, sop="1.2.840.10008.5.1.4.1.1.4", bits_stored=16,
                     person=("SIZES^TEST", "S1024"))
        return ds, c.boxes, "one name line per glyph height 6..40 px; small ones over air, large ones over anatomy"

    def ct512_block(self):
        src = stored(("pydicom-data", "693_UNCI.dcm"))
        px = src.pixel_array.astype(np.float64)[None]
        c = Canvas(px.copy())
        fam, giv, pid, dob = self.person()
        top = float(px.max())
        lines = [Text(f"{fam}, {giv}", "name"), Text(f"MRN {pid}", "id"), Text(f"DOB {dob}", "date"),
                 Text(f"ACC A{pid[::-1]}", "id"), Text(INSTITUTIONS[0], "institution"), Text(PHYSICIANS[1], "name")]
        for i, t in enumerate(lines):
            c.draw(t, 4, 4 + i * 15, 10, top, font="cv2" if i % 3 == 2 else "pil")
        ds = dataset(self.seed, "ct512_block", "CT", c.pixels, sop="1.2.840.10008.5.1.4.1.1.2",
                     signed=src.PixelRepresentation == 1, person=(f"{fam}^{giv}", pid),
                     extra={"RescaleIntercept": src.get("RescaleIntercept", 0), "RescaleSlope": src.get("RescaleSlope", 1)})
        return ds, c.boxes, "six-line block, 10 px glyphs, in the corner beside the skull"

    def _mammo(self, name: str, rows: int = 3328, cols: int = 2560):
        img, mask = breast(rows, cols, self.rng)
        return Canvas(img[None].copy()), mask

    def _mg_ds(self, name: str, c: Canvas, person, extra=None):
        ex = {"ImageLaterality": "R", "ViewPosition": "MLO", "PresentationIntentType": "FOR PRESENTATION"}
        ex.update(extra or {})
        return dataset(self.seed, name, "MG", c.pixels, sop="1.2.840.10008.5.1.4.1.1.1.2", bits_stored=12,
                       person=person, extra=ex)

    def mg_corner3(self):
        c, _ = self._mammo("mg_corner3")
        fam, giv, pid, dob = self.person()
        cols = c.pixels.shape[2]
        c.draw(Text("R MLO", "laterality", "label"), cols - 420, 60, 60, 4095)
        c.draw(Text(f"{fam}, {giv}", "name"), cols - 760, 200, 32, 4095)
        c.draw(Text(f"ID {pid}", "id"), cols - 760, 250, 32, 4095)
        c.draw(Text(f"{dob} 09:41", "date"), cols - 760, 300, 32, 4095, font="cv2")
        return self._mg_ds("mg_corner3", c, (f"{fam}^{giv}", pid)), c.boxes, \
            "three 32 px lines in the top-right corner; 'R MLO' view label must stay"

    def mg_window(self):
        c, _ = self._mammo("mg_window")
        fam, giv, pid, dob = self.person()
        cols = c.pixels.shape[2]
        # window 1000..2600; a bright plate at 3000 (above the top) carries text at 3900
        c.pixels[0, 120:220, cols - 900:cols - 80] = 3000
        c.draw(Text(f"{fam} {giv}", "name"), cols - 880, 140, 40, 3900)
        # a plate inside the window (1500) carries text at 1650: 9 % of the window, 4 % of full range
        c.pixels[0, 3000:3100, cols - 900:cols - 80] = 1500
        c.draw(Text(f"ID {pid} {dob}", "id"), cols - 880, 3020, 40, 1650)
        return self._mg_ds("mg_window", c, (f"{fam}^{giv}", pid), {"WindowCenter": 1800, "WindowWidth": 1600}), \
            c.boxes, "text above the VOI window top (invisible when windowed) and low-contrast text inside it"

    def mg_tissue(self):
        c, mask = self._mammo("mg_tissue")
        fam, giv, pid, dob = self.person()
        rows = c.pixels.shape[1]
        mid = float(np.median(c.pixels[0][mask]))
        c.draw(Text(f"{fam} {giv}", "name"), 300, rows // 2 - 200, 36, mid + 900)
        c.draw(Text(f"{pid}", "id"), 400, rows // 2 + 100, 28, mid - 500, font="cv2")
        return self._mg_ds("mg_tissue", c, (f"{fam}^{giv}", pid)), c.boxes, \
            "a bright name and a dark ID written over breast tissue"

    def mg_labels(self):
        c, _ = self._mammo("mg_labels")
        fam, _, pid, _ = self.person()
        cols = c.pixels.shape[2]
        c.draw(Text("L CC", "laterality", "label"), cols - 380, 80, 60, 4095)
        c.draw(Text(f"L CC {fam}", "name"), cols - 760, 3150, 40, 4095)
        return self._mg_ds("mg_labels", c, (f"{fam}^ANNA", pid), {"ImageLaterality": "L", "ViewPosition": "CC"}), \
            c.boxes, "'L CC' alone is authorised; 'L CC <NAME>' is one line that must be masked"

    def mg_4096(self):
        c, _ = self._mammo("mg_4096", rows=4096, cols=3328)
        fam, giv, pid, dob = self.person()
        cols = c.pixels.shape[2]
        c.draw(Text(f"{fam}^{giv}", "name"), cols - 420, 40, 17, 4095)
        c.draw(Text(f"{pid}  {dob}", "id"), cols - 420, 66, 17, 4095, font="cv2")
        return self._mg_ds("mg_4096", c, (f"{fam}^{giv}", pid)), c.boxes, "17 px text on a 4096x3328 mammogram"

    def palette_us(self):
        src = stored(("pydicom-data", "OBXXXX1A.dcm"))
        px = src.pixel_array.astype(np.float64)[None]
        c = Canvas(px.copy())
        shown = apply_color_lut(np.arange(256, dtype=np.uint8), src).astype(np.float64)
        white = int(np.argmax(shown.sum(axis=-1)))
        fam, giv, pid, dob = self.person()
        c.draw(Text(f"{fam} {giv}", "name"), 420, 380, 14, white)
        c.draw(Text(f"DOB {dob}", "date"), 420, 404, 14, white, font="cv2")
        # the original burned-in text stays: its boxes come from annotations.json
        ann = json.loads((Path(__file__).resolve().parent / "annotations.json").read_text())
        orig = next(e for e in ann["files"] if e["path"] == "OBXXXX1A.dcm")
        boxes = [dict(b, frames="all") for b in orig["boxes"]] + c.boxes
        extra = {k: src[k].value for k in ("RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
                                           "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
                                           "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData")}
        ds = dataset(self.seed, "palette_us", "US", c.pixels, sop="1.2.840.10008.5.1.4.1.1.6.1", bits_stored=8,
                     photometric="PALETTE COLOR", person=(f"{fam}^{giv}", pid), extra=extra)
        for k in extra:
            if k.endswith("Data"):
                ds[k].VR = "OW"
        return ds, boxes, "Philips OB palette frame (its own header text) plus a name and DOB in the dark area"

    def mr_bigendian(self):
        src = stored(("pydicom-data", "MR2_UNCI.dcm"))
        px = cv2.resize(src.pixel_array.astype(np.float32), (512, 512), interpolation=cv2.INTER_AREA).astype(np.float64)[None]
        c = Canvas(px.copy())
        fam, giv, pid, dob = self.person()
        top = float(np.percentile(px, 99.9))
        c.draw(Text(f"{fam}^{giv}", "name"), 6, 6, 12, top)
        c.draw(Text(pid, "id"), 6, 24, 12, top)
        c.draw(Text(dob, "date"), 380, 490, 12, top, font="cv2")
        ds = dataset(self.seed, "mr_bigendian", "MR", c.pixels, sop="1.2.840.10008.5.1.4.1.1.4", big_endian=True,
                     person=(f"{fam}^{giv}", pid))
        return ds, c.boxes, "Explicit VR Big Endian 16-bit MR"

    def mr_multiframe(self):
        src = stored(("pydicom-data", "emri_small.dcm"))
        arr = src.pixel_array.astype(np.float32)
        px = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_CUBIC) for f in arr]).astype(np.float64)
        px = np.clip(px, 0, None)
        c = Canvas(px.copy())
        fam, giv, pid, dob = self.person()
        top = float(px.max())
        c.draw(Text(f"{fam} {giv}", "name"), 4, 4, 10, top)
        c.draw(Text(f"DOB {dob}", "date"), 120, 238, 10, top, font="cv2", frames=[5])
        ds = dataset(self.seed, "mr_multiframe", "MR", c.pixels, sop="1.2.840.10008.5.1.4.1.1.4",
                     person=(f"{fam}^{giv}", pid))
        return ds, c.boxes, "10 frames; the name on every frame, the DOB on frame 5 only"

    def pm_float(self):
        src = stored(("pydicom-data", "MR2_UNCI.dcm"))
        px = cv2.resize(src.pixel_array.astype(np.float32), (256, 256), interpolation=cv2.INTER_AREA).astype(np.float64)
        px = (px / px.max() * 3.5)[None]  # e.g. an ADC-like map, 0..3.5
        c = Canvas(px.copy())
        fam, giv, pid, dob = self.person()
        c.draw(Text(f"{fam} {giv}", "name"), 4, 4, 9, 3.5)
        c.draw(Text(dob, "date"), 4, 240, 9, 3.5, font="cv2")
        ds = dataset(self.seed, "pm_float", "MR", c.pixels, sop="1.2.840.10008.5.1.4.1.1.30", float_data=True,
                     person=(f"{fam}^{giv}", pid))
        return ds, c.boxes, "FloatPixelData parametric map (float32)"

    def cr_monochrome1(self):
        src = stored(("pydicom-data", "RG1_UNCI.dcm"))
        px = src.pixel_array.astype(np.float64)[None]
        c = Canvas(px.copy())
        fam, giv, pid, dob = self.person()
        low = float(px.min())
        c.draw(Text(f"{fam}, {giv}", "name"), 1300, 1800, 24, low)
        c.draw(Text(f"{pid}  {dob}", "id"), 1300, 1840, 24, low, font="cv2")
        ds = dataset(self.seed, "cr_monochrome1", "CR", c.pixels, sop="1.2.840.10008.5.1.4.1.1.1",
                     photometric="MONOCHROME1", bits_stored=int(src.BitsStored), person=(f"{fam}^{giv}", pid))
        return ds, c.boxes, "MONOCHROME1 chest CR; text drawn with the lowest stored value (white on screen)"


CASES = ["ct128_tiny", "mr1024_sizes", "ct512_block", "mg_corner3", "mg_window", "mg_tissue", "mg_labels", "mg_4096",
         "palette_us", "mr_bigendian", "mr_multiframe", "pm_float", "cr_monochrome1"]


def generate(out: Path, seed: int = DEFAULT_SEED, only: str = "") -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name in CASES:
        if only and only not in name:
            continue
        gen = Cases(seed + CASES.index(name))  # per-case seed: one case's changes never shift another
        ds, boxes, note = getattr(gen, name)()
        path = out / f"{name}.dcm"
        ds.save_as(path, enforce_file_format=True)
        frames = int(ds.get("NumberOfFrames", 1))
        entries.append({"name": name, "file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                        "modality": ds.Modality, "photometric": ds.PhotometricInterpretation, "rows": ds.Rows,
                        "cols": ds.Columns, "frames": frames, "decodable": True, "no_text": False, "boxes": boxes,
                        "note": note})
    (out / "truth.json").write_text(json.dumps({"seed": seed, "cases": entries}, indent=1) + "\n")
    return entries


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    for e in generate(args.out, args.seed, args.only):
        print(f"{e['name']:16s} {e['modality']} {e['cols']}x{e['rows']}x{e['frames']} "
              f"{sum(b['cls'] == 'phi' for b in e['boxes'])} PHI, {sum(b['cls'] == 'label' for b in e['boxes'])} labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
