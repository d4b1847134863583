#!/usr/bin/env bash
# Install each peer de-identification tool into its OWN virtualenv under bench/.venvs/.
#
# Idempotent: a venv whose install already succeeded with the same requirements (bench/.venvs/<name>/.ok
# holds them) is skipped; change a pin and it is rebuilt.
# A peer that fails to install is recorded in bench/.venvs/<name>/.failed (last lines of the
# pip log) and the benchmark reports it as "not installed" instead of crashing.
#
# Usage: bash bench/setup_peers.sh [peer ...]      (default: all peers)
#        BENCH_PYTHON=python3.11 bash bench/setup_peers.sh
#        BENCH_SKIP_APT=1 ...   to never call apt-get (presidio then needs tesseract already present)
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENVS="$HERE/.venvs"
PY="${BENCH_PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
mkdir -p "$VENVS"

# name -> pip requirements (pinned to the releases the adapters were written against;
# override with e.g. BENCH_PIN_dicognito="dicognito==0.19.0").
declare -A REQS=(
  [dicognito]="dicognito==0.19.0"
  [pydicom-deid]="deid==0.4.13"
  # idiscore's current release (1.6.0) needs Python >= 3.12 (pip on 3.11 only sees 1.2.0): its venv is
  # built with a 3.12+ interpreter when one exists; otherwise we fall back to 1.2.0, which pins an older
  # stack (Pillow<11, dicomgenerator 0.9 -> pydicom 2.x) and gets the pins it needs.
  [idiscore]="idiscore==1.6.0"
  [dicom-anonymizer]="dicom-anonymizer==2.1.0"
  [presidio]="presidio-image-redactor==0.0.62"
)
ALL=(dicognito pydicom-deid idiscore dicom-anonymizer presidio)
declare -A NEEDS_PY312=([idiscore]=1)
declare -A FALLBACK=([idiscore]="idiscore==1.2.0 pydicom<3")

find_py312() {
  local c
  for c in python3.12 python3.13 python3.14 "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3 /usr/bin/python3; do
    [ -x "$(command -v "$c" 2>/dev/null)" ] || continue
    "$c" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { command -v "$c"; return 0; }
  done
  return 1
}

peers=("$@")
[ ${#peers[@]} -eq 0 ] && peers=("${ALL[@]}")

apt_tesseract() {
  command -v tesseract >/dev/null 2>&1 && return 0
  [ "${BENCH_SKIP_APT:-0}" = 1 ] && return 1
  command -v apt-get >/dev/null 2>&1 || return 1
  local sudo=""
  [ "$(id -u)" != 0 ] && sudo="sudo -n"
  ($sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq tesseract-ocr tesseract-ocr-eng) \
    >"$VENVS/apt-tesseract.log" 2>&1
  command -v tesseract >/dev/null 2>&1
}

# presidio's analyzer wants a spaCy pipeline; its default (en_core_web_lg) is fetched from GitHub at
# run time, which is unreachable offline. We build a blank English spaCy pipeline on disk and point
# the analyzer at it: Presidio's pattern recognisers (dates, phone numbers, IDs, e-mails...) still
# run; its NER-based PERSON detection does not. The adapter (adapters/presidio_adapter.py) does this.
install_one() {
  local name="$1"
  local dir="$VENVS/$name"
  local reqs="${REQS[$name]:-}"
  local pinvar="BENCH_PIN_${name//-/_}"
  [ -n "${!pinvar:-}" ] && reqs="${!pinvar}"
  if [ -z "$reqs" ]; then echo "unknown peer: $name" >&2; return 1; fi
  local py="$PY"
  if [ -n "${NEEDS_PY312[$name]:-}" ] && [ -z "${!pinvar:-}" ]; then
    if py312="$(find_py312)"; then py="$py312"; else reqs="${FALLBACK[$name]}"; fi
  fi
  if [ -f "$dir/.ok" ] && [ "$(cat "$dir/.ok")" = "$reqs" ]; then echo "[$name] already installed"; return 0; fi
  rm -rf "$dir"
  echo "[$name] creating venv ($("$py" -V 2>&1)) and installing: $reqs"
  if ! "$py" -m venv "$dir" >"$VENVS/$name.log" 2>&1; then
    mkdir -p "$dir"; tail -5 "$VENVS/$name.log" >"$dir/.failed"; echo "[$name] FAILED (venv)"; return 1
  fi
  if [ "$name" = presidio ] && ! apt_tesseract; then
    echo "tesseract-ocr could not be installed via apt-get (see apt-tesseract.log)" >"$dir/.failed"
    echo "[$name] FAILED (tesseract)"; return 1
  fi
  # shellcheck disable=SC2086
  if "$dir/bin/python" -m pip install -q $reqs >>"$VENVS/$name.log" 2>&1; then
    "$dir/bin/python" -m pip freeze >"$dir/.freeze" 2>/dev/null
    printf '%s' "$reqs" >"$dir/.ok"; rm -f "$dir/.failed"; echo "[$name] ok"
  else
    grep -E "ERROR|error" "$VENVS/$name.log" | tail -8 >"$dir/.failed"
    [ -s "$dir/.failed" ] || tail -8 "$VENVS/$name.log" >"$dir/.failed"
    echo "[$name] FAILED (pip; see bench/.venvs/$name.log)"
    return 1
  fi
}

rc=0
for p in "${peers[@]}"; do install_one "$p" || rc=1; done
# never fail the benchmark because a peer would not install: it is reported in the table
exit 0
