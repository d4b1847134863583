"""Presidio's DicomImageRedactorEngine (pixel track only: it does not touch headers).

    <presidio venv>/bin/python bench/adapters/presidio_adapter.py IN_DIR OUT_DIR [SPACY_MODEL_DIR]

Presidio's analyzer wants the spaCy model en_core_web_lg, which it downloads from GitHub on first
use; that is unreachable offline, so we give it a blank English spaCy pipeline saved on disk: its
pattern recognisers (dates, phone numbers, e-mails, ...) and the DICOM-metadata deny list
(use_metadata=True, on by default: header PatientName/PatientID/... are searched in the OCR text) run;
its spaCy-NER PERSON detection does not. OCR is Tesseract (Debian tesseract-ocr).
Prints one JSON line: ok/failed counts plus per-file seconds (in-process, excluding start-up)."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import list_inputs  # noqa: E402


def main() -> int:
    in_dir, out_dir = sys.argv[1], sys.argv[2]
    model_dir = sys.argv[3] if len(sys.argv) > 3 else os.path.join(out_dir + ".spacy_blank_en")
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.perf_counter()
    import pydicom
    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_image_redactor import DicomImageRedactorEngine, ImageAnalyzerEngine

    if not os.path.isdir(model_dir):
        spacy.blank("en").to_disk(model_dir)
    nlp = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model_dir}]}
    ).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    engine = DicomImageRedactorEngine(image_analyzer_engine=ImageAnalyzerEngine(analyzer_engine=analyzer))
    startup = time.perf_counter() - t0
    ok = failed = 0
    per_file = {}
    errors = []
    for f in list_inputs(in_dir):
        t1 = time.perf_counter()
        try:
            ds = pydicom.dcmread(f)
            red = engine.redact(ds, fill="contrast")
            red.save_as(os.path.join(out_dir, os.path.basename(f)))
            ok += 1
        except Exception as e:
            failed += 1
            errors.append(f"{os.path.basename(f)}: {type(e).__name__}: {str(e)[:200]}")
        per_file[os.path.basename(f)] = time.perf_counter() - t1
    from importlib.metadata import version

    print(json.dumps({"tool": "presidio-image-redactor", "version": version("presidio-image-redactor"),
                      "ok": ok, "failed": failed, "errors": errors[:10], "startup_s": startup,
                      "per_file_s": per_file}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
