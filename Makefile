# deidcli: every command a fresh machine needs. `make demo` and `make test` install what they need.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DEID := $(VENV)/bin/deid
STAMP := $(VENV)/.installed
# The easyocr extra pulls torch 2.14.1 + torchvision 0.29.1 (~5.5 GB); set EXTRAS=test for a lighter install.
EXTRAS ?= test,easyocr

.PHONY: install demo test lint fuzz bench bench-quick bench-pixels bench-pixels-quick clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf demo-out demo-out.private
	$(DEID) run samples/dicom demo-out --org-root 1.2.826.0.1.3680043.10.999 --region-rules recipes/regions/ultrasound.json --workers 2 --no-progress; \
	  code=$$?; [ $$code -eq 0 ] || [ $$code -eq 3 ] || exit $$code
	@echo "De-identified files: demo-out/   audit: demo-out/audit.csv   private mapping: demo-out.private/"
	@find demo-out -name '*.dcm' | head -20
	$(DEID) verify demo-out --workers 2 --no-progress; code=$$?; \
	  $(DEID) report demo-out || exit $$?; \
	  echo "Review page (shows originals: keep it private): demo-out.private/report.html"; exit $$code

test: $(STAMP)
	$(VENV)/bin/ruff check deidcli tests recipes bench
	$(VENV)/bin/pytest -q -p no:cacheprovider

fuzz: $(STAMP)
	DEID_FUZZ_EXAMPLES=2000 $(VENV)/bin/pytest -q tests/test_fuzz.py

bench: $(STAMP)
	bash bench/run.sh
	$(PY) bench/pixel_speed.py
	$(PY) bench/pixel_eval.py

# Pixel stage: burned-in text left, anatomy lost, speed, beside Presidio and naive EasyOCR (bench/pixel_results.md).
bench-pixels: $(STAMP)
	bash bench/setup_peers.sh presidio
	$(PY) bench/pixel_eval.py

bench-pixels-quick: $(STAMP)
	$(PY) bench/pixel_eval.py --quick --no-thumbs --out bench/work/pixel_results_quick.md

bench-quick: $(STAMP)
	bash bench/run.sh --quick

clean:
	rm -rf demo-out demo-out.private .pytest_cache
