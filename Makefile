# Two entry points on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use; `make test` also installs the system packages the
# tests use (scripts/install-system-deps.sh). Nothing else needs installing by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SCENE  := data/zion/landsat8_2015-08-18_b2345.tif

.PHONY: install system-deps demo test bench lint clean
# `test` needs its prerequisites in order: system packages, then the venv.
.NOTPARALLEL:

$(BIN)/geoseg: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: this pair imports and runs on CPU (and CUDA where present);
	# pinning it before the project means pip never resolves torch on its own.
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(BIN)/geoseg

install: $(BIN)/geoseg

# gdal-bin, python3-qgis, chromium (+ fonts-liberation) with apt-get when missing;
# quiet when present; says what to run when it cannot install (no root or sudo).
system-deps:
	@bash scripts/install-system-deps.sh

demo: install
	$(BIN)/geoseg predict $(SCENE) --model landcover-nlcd8 --out results/ \
		--confidence --quicklook --overwrite

test: system-deps install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/run.py

lint: install
	$(BIN)/ruff check geoseg tests benchmarks scripts
	$(BIN)/mypy

clean:
	rm -rf $(VENV) results
