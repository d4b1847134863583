"""`deid report`: one self-contained HTML page; structure asserted by parsing it, one render in Chromium."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner

from deidcli.cli import main
from deidcli.report import write_report
from deidcli.verify.scan import verify_release
from tests.release_helpers import BAND_ROWS, copy_release, edit_output, make_release, output_of


class Page(HTMLParser):
    """Collects what the tests look at: cards with their attributes, images, scripts, links, details."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict] = []
        self.images: list[dict] = []
        self.scripts = 0
        self.inputs: list[str] = []
        self.external: list[str] = []
        self.details: list[str] = []
        self.text: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("src", "href"):
            if attributes.get(name, "").startswith(("http:", "https:", "//")):
                self.external.append(attributes[name])
        if tag == "section" and "card" in attributes.get("class", ""):
            self.cards.append({**attributes, "images": []})
        elif tag == "img":
            self.images.append(attributes)
            if self.cards:
                self.cards[-1]["images"].append(attributes)
        elif tag == "script":
            self.scripts += 1
        elif tag == "input":
            self.inputs.append(attributes.get("id", ""))
        elif tag == "details":
            self.details.append(attributes.get("class", ""))
        elif tag == "h2" and self.cards:
            self._in_title = True
            self.cards[-1]["title"] = ""
        elif tag == "link":
            self.external.append(str(attributes))

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_title = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_title:
            self.cards[-1]["title"] += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, Path, Path]:
    return make_release(tmp_path_factory.mktemp("release"))


def test_report_is_self_contained_with_one_card_per_input_sorted_worst_first(release):
    _, out_dir, private_dir = release
    path = write_report(out_dir, private_dir)
    assert path == private_dir / "report.html" and not (out_dir / "report.html").exists()
    page = parse(path)
    assert page.external == [] and page.scripts == 1  # our filter script only: the hostile description is escaped
    assert "<script>alert('x')</script> KNEE" in "".join(page.text)
    assert len(page.cards) == 4  # 3 written + 1 quarantined
    assert [c["data-status"] for c in page.cards] == ["written"] * 3 + ["quarantined"]
    shares = [float(c["data-share"]) for c in page.cards if c["data-share"]]
    assert shares == sorted(shares, reverse=True) and len(shares) == 3
    for card in page.cards[:3]:
        assert [i["alt"] for i in card["images"]] == ["original", "de-identified"]
        assert all(i["src"].startswith("data:image/png;base64,") for i in card["images"])
    assert {"f-masked", "f-quar", "f-low"} <= set(page.inputs)
    assert page.details.count("header-diff") == 3
    counts = "".join(page.text)
    assert "files 4" in counts and "quarantined 1 (" in counts


def test_pictures_only_for_the_most_changed_files_past_the_limit(release):
    _, out_dir, private_dir = release
    page = parse(write_report(out_dir, private_dir, max_pictures=1))
    assert [len(card["images"]) for card in page.cards] == [2, 0, 0, 0]
    assert page.cards[0]["title"].startswith("blob.dcm") and page.details.count("header-diff") == 1


def test_share_changed_is_measured_against_the_original(release):
    _, out_dir, private_dir = release
    page = parse(write_report(out_dir, private_dir))
    blob = next(c for c in page.cards if c["title"].startswith("blob.dcm"))
    assert page.cards[0] is blob  # the only image with a masked region comes first
    in_dir = out_dir.parent / "in"
    before = pydicom.dcmread(in_dir / "blob.dcm").pixel_array
    after = pydicom.dcmread(out_dir / output_of(private_dir, "blob.dcm")).pixel_array
    changed = before != after
    # Every changed pixel lies in the masked band (the fill is the image's own background value, so band
    # pixels that already held it do not change), and the page reports exactly the share that changed.
    assert not changed[BAND_ROWS:].any() and changed[:BAND_ROWS].mean() > 0.5
    assert float(blob["data-share"]) == pytest.approx(changed.mean(), abs=1e-6)
    assert blob["data-masked"] == "1"


def test_header_diff_names_actions_and_values(release):
    _, out_dir, private_dir = release
    html_text = write_report(out_dir, private_dir).read_text()
    assert "<td>(0010,0010) PatientName</td><td>emptied</td><td class=v>PLANTEDNAME^ALICE</td>" in html_text
    assert "<td>(0010,1000) OtherPatientIDs</td><td>removed</td>" in html_text
    assert "<td>(0012,0062) PatientIdentityRemoved</td><td>added</td>" in html_text


def test_report_shows_verify_findings_with_crops(release, tmp_path):
    import cv2

    _, out_dir, private_dir = release
    out_copy, private_copy = copy_release(out_dir, private_dir, tmp_path)

    def draw(ds):
        image = ds.pixel_array.copy()
        cv2.putText(image, "ALICE PLANTEDNAME", (60, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 255, 2, cv2.LINE_AA)
        ds.PixelData = image.tobytes()

    edit_output(out_copy, output_of(private_copy, "blob.dcm"), draw)
    result = verify_release(out_copy, private_copy, engine="rapidocr", pixels=True)
    assert any(f.check == "pixels" for f in result.findings)
    runner = CliRunner()
    printed = runner.invoke(main, ["report", str(out_copy)])
    assert printed.exit_code == 0 and str(private_copy / "report.html") in printed.output
    page = parse(private_copy / "report.html")
    assert any(i.get("alt") == "crop" for i in page.images)
    assert f"verify findings {len(result.findings)}" in "".join(page.text)


def test_report_renders_in_headless_chromium(release, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium): the render test needs it")
    _, out_dir, private_dir = release
    path = write_report(out_dir, private_dir)
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1000,1400", path.as_uri()],
                   capture_output=True, timeout=120, check=False)
    import cv2

    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1400, 1000)
    assert image.std() > 10  # not a blank page: text and thumbnails were drawn


def test_filters_hide_cards_in_a_real_browser(release):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium): the filter test needs it")
    _, out_dir, private_dir = release
    path = write_report(out_dir, private_dir)
    dumped = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                             path.as_uri() + "#f-quar"], capture_output=True, text=True, timeout=120, check=False)
    page = Page()
    page.feed(dumped.stdout)
    shown = [(card["data-status"], "hidden" not in card["class"]) for card in page.cards]
    assert shown == [("written", False)] * 3 + [("quarantined", True)]


def test_kept_mammography_label_is_authorised_in_verify_and_listed_in_the_report(tmp_path):
    import cv2
    import numpy as np

    from deidcli.api import run_batch
    from tests.release_helpers import KEY, ORG_ROOT, blob_dataset

    dataset = blob_dataset()
    dataset.Modality = "MG"
    image = np.frombuffer(dataset.PixelData, np.uint8).reshape(dataset.Rows, dataset.Columns).copy()
    cv2.putText(image, "R MLO", (380, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2, cv2.LINE_AA)
    dataset.PixelData = image.tobytes()
    (tmp_path / "in").mkdir()
    dataset.save_as(tmp_path / "in" / "mg.dcm", enforce_file_format=True)
    (tmp_path / "site.key").write_text(KEY.hex())
    summary = run_batch(tmp_path / "in", tmp_path / "out", key=tmp_path / "site.key", org_root=ORG_ROOT,
                        recipe="mammography", workers=1)
    assert summary.rows[0]["ocr_spared_text"] == "R MLO"  # the writer kept the label
    result = verify_release(tmp_path / "out", engine="rapidocr", pixels=True)
    assert result.findings == []
    kinds = [box["kind"] for boxes in result.boxes.values() for box in boxes]
    assert kinds == ["authorised"]
    html_text = write_report(tmp_path / "out").read_text()
    assert "<td>authorised</td><td class=v>R MLO</td>" in html_text
    assert 'data-share="0.000000"' in html_text  # nothing was masked
