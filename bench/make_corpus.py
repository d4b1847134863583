#!/usr/bin/env python3
"""Generate the (seeded, deterministic) benchmark corpus.

    python bench/make_corpus.py N OUT [--seed 1234] [--mammos 3] [--us 4] [--no-pixels]

Writes
    OUT/headers/*.dcm      N real DICOM files (pydicom test files + deid-data) replicated with fresh
                           UIDs and planted identifiers; flat folder, names "<PatientID>_<SOPInstanceUID>.dcm"
                           (the usual PACS-export naming: it lets us catch tools that copy input names).
    OUT/pixels/{mammo,us}/*.dcm  synthetic 16-bit mammograms (3328x2560) and ultrasound frames with burned-in
                           text written with cv2.putText at known boxes.
    OUT/ground_truth.json  planted strings, planted dates and original UIDs per file, text boxes per
                           pixel file.

Run with the project venv (needs pydicom, numpy, opencv-python, pydicom-data, deid-data):
    .venv/bin/python bench/make_corpus.py 1000 bench/work/corpus

Only pydicom.data.get_testdata_file(name) (single file, cached/installed data) is used: never the plural
get_testdata_files, which can hit the network.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, UID_dictionary

CORPUS_VERSION = 2
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# Every planted string matches this (used by the safety scan to find survivors fast):
TOKEN_REGEX = rb"QX[A-Z]{2}[A-Z2-7]{8}"
# Every original UID in the corpus is a fresh 2.25.<128-bit int> UID:
UID_REGEX = rb"2\.25\.[0-9]{10,39}"
PATIENTS_PER_STUDY_GROUP = 10  # consecutive files share patient + study (realistic grouping)

# (source, weight). Mostly small CT/MR headers (the header pass dominates), some larger/compressed.
PYDICOM_SOURCES = [
    ("CT_small.dcm", 10),
    ("MR_small.dcm", 10),
    ("MR_small_implicit.dcm", 5),
    ("MR_small_RLE.dcm", 4),
    ("MR_small_jp2klossless.dcm", 3),
    ("JPEG2000.dcm", 3),
    ("JPGExtended.dcm", 3),
    ("SC_rgb.dcm", 3),
    ("SC_rgb_small_odd.dcm", 2),
    ("rtplan.dcm", 3),
    ("test-SR.dcm", 3),
    ("liver_1frame.dcm", 3),
    ("emri_small.dcm", 3),          # pydicom-data
    ("693_J2KR.dcm", 2),            # pydicom-data
    ("MR2_J2KI.dcm", 2),            # pydicom-data
    ("US1_J2KR.dcm", 2),            # pydicom-data
    ("OBXXXX1A.dcm", 1),            # pydicom-data
    ("examples_overlay.dcm", 1),
]
DEID_DATA_SOURCES = [
    ("humans/ctbrain1.dcm", 5),
    ("humans/ctbrain2.dcm", 5),
    ("dicom-cookies/image1.dcm", 1),
    ("dicom-cookies/image4.dcm", 1),
    ("ultrasounds/GREYSCALE_IMAGE.dcm", 1),
]


def generator_hash() -> str:
    """sha256 of this file: the harness rebuilds a cached corpus when the generator changed."""
    import hashlib

    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _load_sources() -> list[tuple[str, Path, int]]:
    out = []
    for name, w in PYDICOM_SOURCES:
        try:
            from pydicom.data import get_testdata_file

            p = get_testdata_file(name)
        except Exception:  # pragma: no cover - data package missing
            p = None
        if p:
            out.append((f"pydicom:{name}", Path(p), w))
        else:
            print(f"make_corpus: pydicom test file {name} not available, skipped", file=sys.stderr)
    try:
        import deid_data

        base = Path(deid_data.__file__).parent / "data"
        for rel, w in DEID_DATA_SOURCES:
            p = base / rel
            if p.exists():
                out.append((f"deid-data:{rel}", p, w))
            else:
                print(f"make_corpus: deid-data file {rel} not available, skipped", file=sys.stderr)
    except ImportError:
        print("make_corpus: deid-data not installed, using pydicom test files only", file=sys.stderr)
    if not out:
        sys.exit("make_corpus: no source DICOM files found (install pydicom-data / deid-data)")
    # keep only sources pydicom can read and write back
    good = []
    for label, p, w in out:
        try:
            pydicom.dcmread(p)
            good.append((label, p, w))
        except Exception as e:  # pragma: no cover
            print(f"make_corpus: {label} unreadable ({e}), skipped", file=sys.stderr)
    return good


class Gen:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.used: set[str] = set()

    def token(self, kind: str) -> str:
        assert len(kind) == 2 and kind.isalpha() and kind.isupper()
        while True:
            t = "QX" + kind + "".join(self.rng.choice(TOKEN_ALPHABET) for _ in range(8))
            if t not in self.used:
                self.used.add(t)
                return t

    def uid(self) -> str:
        while True:
            u = "2.25." + str(self.rng.getrandbits(127) | (1 << 100))
            if u not in self.used:
                self.used.add(u)
                return u

    def date(self, y0: int, y1: int) -> str:
        import datetime as dt

        start = dt.date(y0, 1, 1).toordinal()
        end = dt.date(y1, 12, 31).toordinal()
        return dt.date.fromordinal(self.rng.randint(start, end)).strftime("%Y%m%d")


def _remap_uids(ds: Dataset, mapping: dict[str, str], gen: Gen) -> None:
    """Replace every non-well-known UI value (recursively) with a fresh UID, consistently within the file."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _remap_uids(item, mapping, gen)
            continue
        if elem.VR != "UI" or elem.value in (None, ""):
            continue
        # class / syntax / implementation UIDs identify no one: only instance-type UIDs are remapped
        kw = elem.keyword or ""
        if (kw.endswith("ClassUID") or kw in ("TransferSyntaxUID", "CodingSchemeUID", "ContextUID", "MappingResourceUID")
                or elem.tag.is_private):
            continue
        vals = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
        new = []
        for v in vals:
            v = str(v)
            if v in UID_dictionary or not v:
                new.append(v)
            else:
                if v not in mapping:
                    mapping[v] = gen.uid()
                new.append(mapping[v])
        elem.value = new if len(new) > 1 else new[0]


def _collect_uis(ds: Dataset, acc: set[str]) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _collect_uis(item, acc)
        elif elem.VR == "UI" and elem.value:
            vals = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
            acc.update(str(v) for v in vals)


def make_header_file(src: Path, idx: int, group: dict, gen: Gen) -> tuple[Dataset, dict]:
    ds = pydicom.dcmread(src)
    mapping: dict[str, str] = {}
    # study-level UIDs are shared by the group
    if "StudyInstanceUID" in ds:
        mapping[str(ds.StudyInstanceUID)] = group["study_uid"]
    else:
        ds.StudyInstanceUID = group["study_uid"]
    _remap_uids(ds, mapping, gen)
    if ds.file_meta is not None:
        _remap_uids(ds.file_meta, mapping, gen)
    if "SOPInstanceUID" not in ds:
        ds.SOPInstanceUID = gen.uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID

    if "SpecificCharacterSet" not in ds:  # real exports carry it; idiscore refuses files without it
        ds.SpecificCharacterSet = "ISO_IR 100"
    planted: dict[str, str] = {}

    def plant(key: str, value: str) -> None:
        planted[key] = value

    # --- group (patient / study) level identifiers
    ds.PatientName = f"{group['pn_family']}^{group['pn_given']}"
    plant("PatientName.family", group["pn_family"])
    plant("PatientName.given", group["pn_given"])
    ds.PatientID = group["patient_id"]
    plant("PatientID", group["patient_id"])
    ds.OtherPatientIDs = group["other_id"]
    plant("OtherPatientIDs", group["other_id"])
    ds.AccessionNumber = group["accession"]
    plant("AccessionNumber", group["accession"])
    ds.InstitutionName = f"{group['institution']} HOSPITAL"
    plant("InstitutionName", group["institution"])
    ds.ReferringPhysicianName = f"{group['referrer']}^DR"
    plant("ReferringPhysicianName", group["referrer"])
    ds.StudyDescription = f"CT CHEST {group['study_desc']}"
    plant("StudyDescription", group["study_desc"])
    ds.PatientBirthDate = group["birth_date"]
    ds.StudyDate = group["study_date"]
    for kw in ("SeriesDate", "AcquisitionDate", "ContentDate"):
        if kw in ds:
            setattr(ds, kw, group["study_date"])
    dates = {"PatientBirthDate": group["birth_date"], "StudyDate": group["study_date"]}

    # --- file level identifiers
    t = gen.token("OP")
    ds.OperatorsName = f"{t}^TECH"
    plant("OperatorsName", t)
    # nested sequence items
    rq = Dataset()
    t = gen.token("RQ")
    rq.RequestedProcedureID = t
    plant("RequestAttributesSequence[0].RequestedProcedureID", t)
    t = gen.token("SD")
    rq.ScheduledProcedureStepDescription = f"SCHED {t}"
    plant("RequestAttributesSequence[0].ScheduledProcedureStepDescription", t)
    ds.RequestAttributesSequence = Sequence([rq])
    rp = Dataset()
    rp.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.1.1"  # Detached Patient Management SOP Class
    rp.ReferencedSOPInstanceUID = gen.uid()
    mapping[f"refpatient-{idx}"] = rp.ReferencedSOPInstanceUID
    ds.ReferencedPatientSequence = Sequence([rp])
    # private block, group 0x0011
    blk = ds.private_block(0x0011, "BENCH PHI 1.0", create=True)
    t = gen.token("PV")
    blk.add_new(0x10, "LO", f"MRN {t}")
    plant("(0011,xx10) private LO", t)
    t = gen.token("PN")
    blk.add_new(0x11, "PN", f"{t}^PRIVATE")
    plant("(0011,xx11) private PN", t)
    # file meta
    t = gen.token("AE")
    ds.file_meta.SourceApplicationEntityTitle = t
    plant("FileMeta.SourceApplicationEntityTitle", t)
    # benign tracer that de-identifiers keep: lets the scan map outputs back to inputs (for dates)
    ds.InstanceNumber = idx + 1

    # record only the fresh UIDs actually present in the written file (a remapped value may have been
    # overwritten afterwards, e.g. an inconsistent source MediaStorageSOPInstanceUID)
    present: set[str] = set()
    _collect_uis(ds, present)
    _collect_uis(ds.file_meta, present)
    uids = sorted(present & set(mapping.values()))
    return ds, {"planted": planted, "dates": dates, "uids": uids, "tracer": idx + 1}


def _group(gen: Gen) -> dict:
    return {
        "study_uid": gen.uid(),
        "pn_family": gen.token("PF"),
        "pn_given": gen.token("PG"),
        "patient_id": gen.token("PI"),
        "other_id": gen.token("OI"),
        "accession": gen.token("AN"),
        "institution": gen.token("IN"),
        "referrer": gen.token("RP"),
        "study_desc": gen.token("DS"),
        "birth_date": gen.date(1920, 1999),
        "study_date": gen.date(2001, 2024),
    }


# ----------------------------------------------------------------------------- pixels


def _pixel_ds(gen: Gen, group: dict, sop_class: str, modality: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    sop = gen.uid()
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.999.1.1"
    meta.SourceApplicationEntityTitle = gen.token("AE")
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = group["study_uid"]
    ds.SeriesInstanceUID = gen.uid()
    ds.Modality = modality
    ds.PatientName = f"{group['pn_family']}^{group['pn_given']}"
    ds.PatientID = group["patient_id"]
    ds.PatientBirthDate = group["birth_date"]
    ds.PatientSex = "F"
    ds.StudyDate = group["study_date"]
    ds.StudyTime = "101010"
    ds.AccessionNumber = group["accession"]
    ds.InstitutionName = f"{group['institution']} HOSPITAL"
    ds.ReferringPhysicianName = f"{group['referrer']}^DR"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BurnedInAnnotation = "YES"
    return ds


def _draw_text(img, lines, org, scale, thickness, value):
    """Write lines of segments with cv2.putText; return one box per recorded segment.

    `lines` is a list of lines, each a list of (text, phi) segments separated by a space; phi is True for
    an identifier, False for a non-PHI annotation to keep, None for a label (drawn, not scored).
    Boxes are [x0, y0, x1, y1] (x1/y1 exclusive) around the segment's ink."""
    import cv2
    import numpy as np

    font = cv2.FONT_HERSHEY_SIMPLEX
    boxes = []
    x_start, y = org
    # OpenCV >= 5 only draws text on 8-bit images: draw a mask, then paint `value` through it
    mask = np.zeros(img.shape[:2], np.uint8)
    (space_w, _), _ = cv2.getTextSize(" ", font, scale, thickness)
    for segs in lines:
        x = x_start
        line_h = 0
        for text, phi in segs:
            (w, h), base = cv2.getTextSize(text, font, scale, thickness)
            cv2.putText(mask, text, (x, y + h), font, scale, 255, thickness, cv2.LINE_8)
            if phi is not None:
                boxes.append({"text": text, "box": [x, y, x + w, y + h + base], "phi": phi})
            x += w + space_w
            line_h = max(line_h, h + base)
        y += int(line_h * 1.6)
    img[mask > 0] = value
    return boxes


def _phi_lines(group: dict) -> list[list[tuple[str, bool | None]]]:
    bd = group["birth_date"]
    return [
        [(group["pn_family"] + ",", True), (group["pn_given"], True)],
        [("ID:", None), (group["patient_id"], True)],
        [("DOB:", None), (f"{bd[:4]}-{bd[4:6]}-{bd[6:]}", True)],
        [("ACC:", None), (group["accession"], True)],
    ]


def make_mammo(gen: Gen, seed: int, k: int) -> tuple[Dataset, list[dict]]:
    import numpy as np

    group = _group(gen)
    rows, cols = 3328, 2560
    rs = np.random.default_rng(seed * 100 + k)
    yy, xx = np.mgrid[0:rows, 0:cols]
    # a breast-like half-ellipse against the chest wall (right side), with noise
    cy, cx = rows / 2, cols
    mask = ((yy - cy) / (rows * 0.42)) ** 2 + ((xx - cx) / (cols * 0.8)) ** 2 < 1
    img = (rs.normal(300, 40, size=(rows, cols))).clip(0, 4095)
    img[mask] = rs.normal(1800, 250, size=int(mask.sum())).clip(0, 4095)
    img = img.astype(np.uint16)
    boxes = _draw_text(img, _phi_lines(group), (60, 60), 3.0, 6, 4095)
    boxes += _draw_text(img, [[("R MLO", False)]], (60, rows - 260), 4.0, 8, 4095)
    ds = _pixel_ds(gen, group, "1.2.840.10008.5.1.4.1.1.1.2", "MG")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.ImageLaterality = "R"
    ds.ViewPosition = "MLO"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.PixelData = img.tobytes()
    return ds, boxes, group


def make_us(gen: Gen, seed: int, k: int) -> tuple[Dataset, list[dict]]:
    import numpy as np

    group = _group(gen)
    rows, cols = 600, 800
    rs = np.random.default_rng(seed * 1000 + k)
    img = np.zeros((rows, cols, 3), np.uint8)
    # a speckled sector
    yy, xx = np.mgrid[0:rows, 0:cols]
    ang = np.arctan2(xx - cols / 2, yy + 50)
    r = np.hypot(xx - cols / 2, yy + 50)
    sector = (np.abs(ang) < 0.6) & (r > 120) & (r < rows + 20)
    speck = rs.gamma(2.0, 40.0, size=(rows, cols)).clip(0, 255).astype(np.uint8)
    for c in range(3):
        img[..., c][sector] = speck[sector]
    boxes = _draw_text(img, _phi_lines(group), (10, 8), 0.6, 1, (255, 255, 255))
    boxes += _draw_text(img, [[("5C1 ABD 15cm", False)]], (cols - 200, 8), 0.55, 1, (255, 255, 0))
    ds = _pixel_ds(gen, group, "1.2.840.10008.5.1.4.1.1.6.1", "US")
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    ds.PixelData = img.tobytes()
    return ds, boxes, group


# ----------------------------------------------------------------------------- main


def build(n: int, out: Path, seed: int, mammos: int, us: int) -> dict:
    gen = Gen(seed)
    sources = _load_sources()
    labels = [s[0] for s in sources]
    weights = [s[2] for s in sources]
    by_label = {s[0]: s[1] for s in sources}
    if out.exists():
        shutil.rmtree(out)
    hdir = out / "headers"
    hdir.mkdir(parents=True)
    truth: dict = {
        "corpus_version": CORPUS_VERSION,
        "generator_sha256": generator_hash(),
        "pydicom": pydicom.__version__,
        "seed": seed,
        "n": n,
        "token_regex": TOKEN_REGEX.decode(),
        "uid_regex": UID_REGEX.decode(),
        "files": {},
        "pixel_files": {},
    }
    group = None
    for i in range(n):
        if i % PATIENTS_PER_STUDY_GROUP == 0:
            group = _group(gen)
        label = gen.rng.choices(labels, weights)[0]
        ds, info = make_header_file(by_label[label], i, group, gen)
        name = f"{ds.PatientID}_{ds.SOPInstanceUID}.dcm"
        ds.save_as(hdir / name)
        info["source"] = label
        truth["files"][f"headers/{name}"] = info
    if mammos or us:
        (out / "pixels" / "mammo").mkdir(parents=True)
        (out / "pixels" / "us").mkdir(parents=True)
        for k in range(mammos):
            ds, boxes, group = make_mammo(gen, seed, k)
            ds.InstanceNumber = 9000 + k  # tracer
            name = f"mammo/MG_{k:02d}.dcm"
            ds.save_as(out / "pixels" / name, enforce_file_format=True)
            truth["pixel_files"][f"pixels/{name}"] = {"tracer": 9000 + k,
                "kind": "mammo", "rows": ds.Rows, "cols": ds.Columns, "boxes": boxes,
                "header_values": [group["pn_family"], group["pn_given"], group["patient_id"]],
            }
        for k in range(us):
            ds, boxes, group = make_us(gen, seed, k)
            ds.InstanceNumber = 9500 + k  # tracer
            name = f"us/US_{k:02d}.dcm"
            ds.save_as(out / "pixels" / name, enforce_file_format=True)
            truth["pixel_files"][f"pixels/{name}"] = {"tracer": 9500 + k,
                "kind": "us", "rows": ds.Rows, "cols": ds.Columns, "boxes": boxes,
                "header_values": [group["pn_family"], group["pn_given"], group["patient_id"]],
            }
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True))
    return truth


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, help="number of header-track files")
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--mammos", type=int, default=3, help="synthetic 3328x2560 16-bit mammograms")
    ap.add_argument("--us", type=int, default=4, help="synthetic ultrasound frames")
    ap.add_argument("--no-pixels", action="store_true")
    a = ap.parse_args(argv)
    if a.no_pixels:
        a.mammos = a.us = 0
    t = build(a.n, a.out, a.seed, a.mammos, a.us)
    print(f"corpus: {len(t['files'])} header files, {len(t['pixel_files'])} pixel files -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
