"""`deid report`: one self-contained HTML page to review a release, kept with the private material.

It shows originals (found through files.csv and IN_DIR), so it is written to the private folder, never to
OUT_DIR. Everything is inline (CSS, a few lines of JS for the filters, thumbnails as base64 PNG): it opens
from a USB stick on an offline machine. What changed in the pixels is measured, not taken from the writer:
the original and the output frames are compared pixel by pixel, and the changed regions are outlined.
Every value shown comes from hostile files, so all of it is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pydicom

from deidcli.verify.needles import element_name, element_text
from deidcli.verify.sources import VERIFY_JSON_NAME, RunFacts, load_run_facts

REPORT_NAME = "report.html"
THUMB_SIDE = 320
LOW_CONFIDENCE = 0.8
MAX_RECTS_LISTED = 40
MASKED, AUTHORISED, FINDING, WEAK = (0, 0, 255), (0, 170, 0), (255, 0, 255), (150, 150, 150)  # BGR
PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}


@dataclass
class Entry:
    """One input file's row in the report."""

    input_path: str
    output_path: str
    status: str
    reason: str
    share_changed: float | None = None
    worst_frame: int = 0
    frames: int = 0
    thumbs: tuple[str, str] = ("", "")
    rects: list[tuple[int, int, int, int]] = field(default_factory=list)
    boxes: list[dict] = field(default_factory=list)
    masked_text: list[tuple[str, str]] = field(default_factory=list)
    lowest_confidence: float | None = None
    header_diff: list[tuple[str, str, str, str]] = field(default_factory=list)
    note: str = ""

    @property
    def low_confidence(self) -> bool:
        confidences = [b["confidence"] for b in self.boxes if b.get("text")]
        if self.lowest_confidence is not None:
            confidences.append(self.lowest_confidence)
        return any(c < LOW_CONFIDENCE for c in confidences)


def _float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def display8(frame: np.ndarray, window: tuple[float, float], photometric: str) -> np.ndarray:
    """8-bit BGR picture of a frame through a fixed window (the same for original and output)."""
    low, high = window
    if frame.ndim == 3:
        image = np.clip(frame.astype(np.float64), low, high)
    else:
        image = np.clip(frame.astype(np.float64), low, high)
    image = ((image - low) / max(high - low, 1e-9) * 255).astype(np.uint8)
    if photometric == "MONOCHROME1":
        image = 255 - image
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else np.ascontiguousarray(image[..., ::-1])


def changed_rects(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x0, y0, x1, y1) of the changed regions, largest first."""
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    rects = [(int(x), int(y), int(x + w), int(y + h), int(area)) for x, y, w, h, area in stats[1:count]]
    rects.sort(key=lambda r: r[4], reverse=True)
    return [r[:4] for r in rects]


def thumbnail(image: np.ndarray, rects: list[tuple[int, int, int, int]], boxes: list[dict]) -> str:
    """A base64 PNG no larger than THUMB_SIDE, with changed regions and OCR boxes outlined."""
    rows, cols = image.shape[:2]
    scale = min(1.0, THUMB_SIDE / max(rows, cols)) if max(rows, cols) else 1.0
    small = cv2.resize(image, (max(1, round(cols * scale)), max(1, round(rows * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
    if max(small.shape[:2]) < 160:  # tiny images are enlarged so boxes stay visible
        factor = 160 / max(small.shape[:2])
        small = cv2.resize(small, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
        scale *= factor
    small = np.ascontiguousarray(small)
    for x0, y0, x1, y1 in rects:
        cv2.rectangle(small, (int(x0 * scale), int(y0 * scale)), (int(x1 * scale), int(y1 * scale)), MASKED, 1)
    colours = {"authorised": AUTHORISED, "finding": FINDING, "weak": WEAK}
    for box in boxes:
        x0, y0, x1, y1 = box["rect"]
        cv2.rectangle(small, (int(x0 * scale), int(y0 * scale)), (int(x1 * scale), int(y1 * scale)),
                      colours.get(box.get("kind", ""), WEAK), 1)
    ok, encoded = cv2.imencode(".png", small)
    return base64.b64encode(encoded.tobytes()).decode("ascii") if ok else ""


def compare_pixels(original: Path | None, output: Path, boxes: list[dict], entry: Entry, pictures: bool = True) -> None:
    """Share of pixels changed (over all frames), the worst frame's changed regions and (with `pictures`) its
    thumbnails."""
    from pydicom.pixels import iter_pixels

    header = pydicom.dcmread(output, stop_before_pixels=True, force=True)
    if "Rows" not in header:
        return
    photometric = str(header.get("PhotometricInterpretation", "MONOCHROME2"))
    out_frames = iter_pixels(output)
    in_frames = iter_pixels(original) if original is not None else None
    changed_total, pixel_total, worst = 0, 0, (-1.0, 0, None, None, None)
    for number, after in enumerate(out_frames):
        before = next(in_frames, None) if in_frames is not None else None
        entry.frames = number + 1
        if before is None or before.shape != after.shape:
            if worst[2] is None:
                worst = (-1.0, number, None, after, None)
            continue
        mask = before != after
        if mask.ndim == 3:
            mask = mask.any(axis=2)
        changed = int(mask.sum())
        changed_total += changed
        pixel_total += mask.size
        share = changed / mask.size
        if share > worst[0]:
            worst = (share, number, before, after, mask)
    share, number, before, after, mask = worst
    if after is None:
        return
    entry.worst_frame = number
    entry.share_changed = changed_total / pixel_total if pixel_total else None
    reference = before if before is not None else after
    low, high = np.percentile(reference, [0.5, 99.5]) if reference.size else (0, 1)
    if high <= low:
        low, high = float(reference.min()), float(reference.max()) + 1
    view = photometric if after.ndim == 2 else "RGB"
    entry.rects = changed_rects(mask) if mask is not None else []
    if original is None:
        entry.note = "original not available: share of the image changed not measured"
    if not pictures:
        return
    frame_boxes = [b for b in boxes if b.get("frame") == number]
    out_thumb = thumbnail(display8(after, (low, high), view), entry.rects, frame_boxes)
    in_thumb = thumbnail(display8(before, (low, high), view), entry.rects, []) if before is not None else ""
    entry.thumbs = (in_thumb, out_thumb)


def original_thumbnail(original: Path) -> str:
    from pydicom.pixels import iter_pixels

    header = pydicom.dcmread(original, stop_before_pixels=True, force=True)
    if "Rows" not in header:
        return ""
    frame = next(iter_pixels(original))
    low, high = np.percentile(frame, [0.5, 99.5])
    view = str(header.get("PhotometricInterpretation", "MONOCHROME2")) if frame.ndim == 2 else "RGB"
    return thumbnail(display8(frame, (float(low), float(max(high, low + 1))), view), [], [])


def _flatten(dataset: pydicom.Dataset, trail: str = "") -> dict[str, str]:
    values: dict[str, str] = {}
    for element in dataset:
        if int(element.tag) in PIXEL_TAGS:
            continue
        name = f"{trail}{element_name(element)}"
        if element.VR == "SQ":
            values[name] = f"<{len(element.value or [])} item(s)>"
            for number, item in enumerate(element.value or []):
                values.update(_flatten(item, f"{name}[{number}] > "))
        elif isinstance(element.value, bytes | bytearray):
            values[name] = f"<{len(element.value)} bytes>"
        else:
            values[name] = element_text(element)
    return values


def header_diff(original: Path | None, output: Path) -> list[tuple[str, str, str, str]]:
    """(attribute, action, before, after) for every attribute of either file, changes first."""
    after = _flatten(pydicom.dcmread(output, stop_before_pixels=True, force=True))
    before = _flatten(pydicom.dcmread(original, stop_before_pixels=True, force=True)) if original else {}
    rows = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if original is None:
            action = "written"
        elif new is None:
            action = "removed"
        elif old is None:
            action = "added"
        elif old == new:
            action = "kept"
        elif not new.strip():
            action = "emptied"
        else:
            action = "replaced"
        rows.append((name, action, old or "", new or ""))
    order = {"replaced": 0, "emptied": 1, "removed": 2, "added": 3, "kept": 4, "written": 5}
    rows.sort(key=lambda r: order[r[1]])
    return rows


def build_entries(facts: RunFacts, verify: dict | None, max_pictures: int = 1000) -> list[Entry]:
    """One entry per input, sorted worst first. Pictures and header diffs for the `max_pictures` worst files
    only (a page with 10 000 of them would not open): past that, a second pass draws only those."""
    audit = {row["input_id"]: row for row in facts.audit}
    masked_text: dict[str, list[tuple[str, str]]] = {}
    for row in facts.ocr_text:
        masked_text.setdefault(row.get("input_path", ""), []).append((row.get("frame", ""), row.get("text", "")))
    boxes = (verify or {}).get("boxes", {})
    one_pass = len(facts.files) <= max_pictures
    entries = []
    for row in facts.files:
        audited = audit.get(row["input_id"], {})
        entry = Entry(row.get("input_path", ""), row.get("output_path", ""), audited.get("status", row.get("status", "")),
                      audited.get("reason", row.get("reason", "")))
        entry.lowest_confidence = _float(audited.get("ocr_lowest_confidence", ""))
        entry.masked_text = masked_text.get(entry.input_path, [])
        entry.boxes = boxes.get(entry.output_path, [])
        _measure(facts, entry, pictures=one_pass)
        entries.append(entry)
    rank = {"written": 0, "quarantined": 1, "skipped": 2}
    entries.sort(key=lambda e: (rank.get(e.status, 3), -(e.share_changed if e.share_changed is not None else -1)))
    if not one_pass:
        for entry in entries[:max_pictures]:
            _measure(facts, entry, pictures=True)
        for entry in entries[max_pictures:]:
            entry.note += f" (no pictures: only the {max_pictures} most changed files have them, see --max-pictures)"
    return entries


def _measure(facts: RunFacts, entry: Entry, pictures: bool) -> None:
    output = facts.out_dir / entry.output_path if entry.output_path else None
    original = facts.in_dir / entry.input_path if facts.in_dir and entry.input_path else None
    original = original if original is not None and original.is_file() else None
    if entry.status == "written" and output is not None and output.is_file():
        try:
            compare_pixels(original, output, entry.boxes, entry, pictures)
        except Exception as error:  # noqa: BLE001 - one unreadable file must not stop the report
            entry.note = f"pixels not compared ({type(error).__name__})"
        if pictures:
            try:
                entry.header_diff = header_diff(original, output)
            except Exception as error:  # noqa: BLE001
                entry.note += f" header not compared ({type(error).__name__})"
    elif original is not None and pictures:
        try:  # what was held back: the original alone, so a reviewer sees what the quarantine kept out
            entry.thumbs = (original_thumbnail(original), "")
        except Exception:  # noqa: BLE001 - a quarantined file is often one that does not decode
            entry.note = "original not displayable"


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 8px}
.counts span{display:inline-block;margin:0 12px 6px 0;padding:4px 8px;background:#fff;border:1px solid #ddd;border-radius:4px}
.filters{margin:8px 0 16px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0 0 14px;padding:10px}
.card h2{font-size:14px;margin:0 0 6px;word-break:break-all}
.pair{display:flex;gap:12px;flex-wrap:wrap}
.pair figure{margin:0}.pair figcaption{font-size:12px;color:#555}
.share{font-weight:bold}.bad{color:#b00}.ok{color:#070}
.status-quarantined{border-left:5px solid #d80}.status-skipped{border-left:5px solid #999}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
td.v{max-width:420px;word-break:break-all}
.legend i{display:inline-block;width:12px;height:12px;border:2px solid;margin:0 4px -2px 8px}
.hidden{display:none}
table.findings img{max-width:320px}
"""

JS = """
function applyFilters(){
  var m=document.getElementById('f-masked').checked,q=document.getElementById('f-quar').checked,
      l=document.getElementById('f-low').checked;
  document.querySelectorAll('.card').forEach(function(c){
    var hide=(m&&c.dataset.masked!=='1')||(q&&c.dataset.status!=='quarantined')||(l&&c.dataset.lowconf!=='1');
    c.classList.toggle('hidden',hide);});
}
document.querySelectorAll('.filters input').forEach(function(i){i.addEventListener('change',applyFilters);});
/* report.html#f-quar,f-low opens with those filters on (a link to share a view) */
location.hash.slice(1).split(',').forEach(function(id){var box=document.getElementById(id);if(box){box.checked=true;}});
applyFilters();
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _card(entry: Entry) -> str:
    masked = bool(entry.rects) or (entry.share_changed or 0) > 0
    attributes = (f'class="card status-{_e(entry.status)}" data-status="{_e(entry.status)}" '
                  f'data-masked="{int(masked)}" data-lowconf="{int(entry.low_confidence)}" '
                  f'data-share="{"" if entry.share_changed is None else f"{entry.share_changed:.6f}"}"')
    parts = [f"<section {attributes}>", f"<h2>{_e(entry.input_path)} &rarr; {_e(entry.output_path or '(no output)')}</h2>"]
    status = f"{_e(entry.status)} ({_e(entry.reason)})"
    if entry.share_changed is not None:
        share = entry.share_changed * 100
        parts.append(f'<div>{status} &middot; <span class="share {"bad" if share > 5 else "ok"}">{share:.2f}% of the '
                     f"image changed</span> &middot; {entry.frames} frame(s), worst frame {entry.worst_frame}</div>")
    else:
        parts.append(f"<div>{status}</div>")
    if entry.thumbs[0] or entry.thumbs[1]:
        figures = []
        if entry.thumbs[0]:
            figures.append(f'<figure><img alt="original" src="data:image/png;base64,{entry.thumbs[0]}">'
                           "<figcaption>original</figcaption></figure>")
        if entry.thumbs[1]:
            figures.append(f'<figure><img alt="de-identified" src="data:image/png;base64,{entry.thumbs[1]}">'
                           "<figcaption>de-identified</figcaption></figure>")
        parts.append(f'<div class="pair">{"".join(figures)}</div>')
    if entry.rects:
        listed = ", ".join(f"({x0},{y0})-({x1},{y1})" for x0, y0, x1, y1 in entry.rects[:MAX_RECTS_LISTED])
        more = f" and {len(entry.rects) - MAX_RECTS_LISTED} more" if len(entry.rects) > MAX_RECTS_LISTED else ""
        parts.append(f"<details class=regions><summary>Changed regions on frame {entry.worst_frame}: {len(entry.rects)}"
                     f"</summary>{_e(listed)}{more}</details>")
    if entry.masked_text:
        rows = "".join(f"<tr><td>{_e(frame)}</td><td class=v>{_e(text)}</td></tr>" for frame, text in entry.masked_text)
        parts.append(f"<details><summary>Text read in masked boxes ({len(entry.masked_text)})</summary>"
                     f"<table class=masked-text><tr><th>frame</th><th>text</th></tr>{rows}</table></details>")
    if entry.boxes:
        rows = "".join(f"<tr><td>{b['frame']}</td><td>{_e(b['kind'])}</td><td class=v>{_e(b['text'])}</td>"
                       f"<td>{b['confidence']:.2f}</td><td>{_e(b['rect'])}</td></tr>" for b in entry.boxes)
        parts.append(f"<details><summary>Text boxes verify read on the output ({len(entry.boxes)})</summary>"
                     "<table class=boxes><tr><th>frame</th><th>kind</th><th>text</th><th>confidence</th>"
                     f"<th>box</th></tr>{rows}</table></details>")
    if entry.lowest_confidence is not None:
        parts.append(f"<div>Lowest OCR confidence in the run: {entry.lowest_confidence:.2f}</div>")
    if entry.header_diff:
        changed = sum(1 for r in entry.header_diff if r[1] not in ("kept", "written"))
        rows = "".join(f"<tr class=a-{_e(action)}><td>{_e(name)}</td><td>{_e(action)}</td><td class=v>{_e(before)}</td>"
                       f"<td class=v>{_e(after)}</td></tr>" for name, action, before, after in entry.header_diff)
        parts.append(f"<details class=header-diff><summary>Header diff ({changed} changed of "
                     f"{len(entry.header_diff)})</summary><table><tr><th>attribute</th><th>action</th>"
                     f"<th>before</th><th>after</th></tr>{rows}</table></details>")
    if entry.note:
        parts.append(f"<div><em>{_e(entry.note)}</em></div>")
    parts.append("</section>")
    return "\n".join(parts)


def short_output(path: str) -> str:
    """PATIENT/.../last digits of the instance UID: enough to tell files apart in a table."""
    parts = path.split("/")
    return path if len(parts) < 3 else f"{parts[0]}/\u2026{parts[-1][-16:]}"


def _verify_section(verify: dict | None, inputs: dict[str, str]) -> str:
    if verify is None:
        return "<section id=verify><h2>Verify</h2><p>deid verify has not run on this release.</p></section>"
    findings = verify.get("findings", [])
    head = (f"<section id=verify><h2>Verify ({_e(verify.get('when', ''))}): {len(findings)} finding(s) in "
            f"{verify.get('files_checked', 0)} file(s); pixels {'read with ' + _e(verify.get('engine')) if verify.get('pixels') else 'not read'}"
            "</h2>")
    if not findings:
        return head + "<p class=ok>No finding.</p></section>"
    rows = []
    for finding in findings:
        crop = ""
        if finding.get("crop") and Path(finding["crop"]).is_file():
            data = base64.b64encode(Path(finding["crop"]).read_bytes()).decode("ascii")
            crop = f'<img alt="crop" src="data:image/png;base64,{data}">'
        file = finding["file"]
        where = (f"{_e(inputs.get(file, ''))}<br><small title=\"{_e(file)}\">{_e(short_output(file))}</small>"
                 if file else "(release)")
        rows.append(f"<tr><td class=v>{where}</td><td>{_e(finding['check'])}</td><td class=v>"
                    f"{_e(finding['place'])}</td><td>{_e(finding['message'])}</td><td class=v>{_e(finding.get('value', ''))}"
                    f"</td><td>{crop}</td></tr>")
    return (head + "<table class=findings><tr><th>file</th><th>check</th><th>place</th><th>finding</th><th>value</th>"
            "<th>crop</th></tr>" + "".join(rows) + "</table></section>")


def render(facts: RunFacts, entries: list[Entry], verify: dict | None) -> str:
    inputs = {e.output_path: e.input_path for e in entries if e.output_path}
    statuses = Counter(e.status for e in entries)
    quarantined = Counter(e.reason for e in entries if e.status == "quarantined")
    masked = sum(int(_float(r.get("rects_masked", "")) or 0) for r in facts.audit)
    kept = sum(int(_float(r.get("ocr_boxes_spared", "")) or 0) for r in facts.audit)
    counts = [f"<span>files <b>{len(entries)}</b></span>", f"<span>written <b>{statuses['written']}</b></span>",
              f"<span>quarantined <b>{statuses['quarantined']}</b>"
              + (" (" + ", ".join(f"{_e(k)} {v}" for k, v in sorted(quarantined.items())) + ")" if quarantined else "")
              + "</span>", f"<span>skipped <b>{statuses['skipped']}</b></span>",
              f"<span>boxes masked <b>{masked}</b></span>", f"<span>labels kept <b>{kept}</b></span>"]
    if verify is not None:
        counts.append(f"<span>verify findings <b>{len(verify.get('findings', []))}</b></span>")
    legend = ('<div class=legend>Outlines: <i style="border-color:#f00"></i>changed (masked) region'
              '<i style="border-color:#0a0"></i>authorised label kept<i style="border-color:#f0f"></i>verify finding'
              '<i style="border-color:#969696"></i>weak box (not legible)</div>')
    filters = ('<div class=filters>Show only: <label><input type=checkbox id=f-masked> masked</label> '
               '<label><input type=checkbox id=f-quar> quarantined</label> '
               '<label><input type=checkbox id=f-low> low-confidence boxes</label></div>')
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>deid review: "
            f"{_e(facts.out_dir.name)}</title><style>{CSS}</style></head><body>"
            f"<h1>deid review of {_e(facts.out_dir)}</h1>"
            "<p><b>Private:</b> this page shows original images and values. Keep it with the private mapping.</p>"
            f'<div class=counts id=counts>{"".join(counts)}</div>{legend}{filters}'
            f"{_verify_section(verify, inputs)}<h2>Files, most changed first</h2>"
            + "\n".join(_card(e) for e in entries) + f"<script>{JS}</script></body></html>\n")


def write_report(out_dir: Path, private_dir: Path | None = None, in_dir: Path | None = None,
                 max_pictures: int = 1000) -> Path:
    from deidcli.verify.scan import quiet_pydicom

    quiet_pydicom()
    facts = load_run_facts(out_dir, private_dir, in_dir=in_dir)
    verify_path = facts.private_dir / VERIFY_JSON_NAME
    verify = json.loads(verify_path.read_text(encoding="utf-8")) if verify_path.is_file() else None
    entries = build_entries(facts, verify, max_pictures)
    path = facts.private_dir / REPORT_NAME
    temporary = path.with_name(REPORT_NAME + ".tmp")
    temporary.write_text(render(facts, entries, verify), encoding="utf-8")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path
