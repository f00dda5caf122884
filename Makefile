# SubspaceLens: two commands.
#   make book   create .venv if missing, install, execute every chapter (papermill), build the HTML
#   make test   create .venv if missing, run pytest, nbval over the CI references of every chapter, and the browser test
# Also: make chapter NB=<name> PARAMS=<yaml>, make pdf, make bench, make clean.
# PARAMS_SET picks the folder of named parameter sets: params/default (the organism on CPU),
# params/pixart-alpha (the real experiment on a GPU), params/ci; on a GPU also params/pixart-sigma,
# params/sana, params/sd3 and params/flux (the same book on another family).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PARAMS_SET ?= default
PARAMS_DIR := params/$(PARAMS_SET)
RETRAIN ?= 0
MATHJAX_VERSION := 3.2.2
MATHJAX := build/static/mathjax/tex-chtml.js

# The metrics factorise many small matrices: one BLAS thread is faster than several competing for
# two cores, and the same setting in `make book` and `make test` keeps reruns bit-identical for nbval.
export OPENBLAS_NUM_THREADS := 1
# Chapters of one run share their profiles and nulls on disk (keyed by caches, settings and library
# sources: subspacelens.scorecard.session), so the scorecard page reads what the chapters computed.
export SUBSPACELENS_SESSION_STORE := $(CURDIR)/build/session-memo
# Notebooks and test workers run JOBS at a time, one thread each: two one-thread captures do 1.5x the work
# of one two-thread capture on this 2-core machine (19.2 s vs 14.2 s per 100 images), bit-identically.
JOBS ?= 2
export OMP_NUM_THREADS := 1

# Chapter order follows _toc.yml; the first three produce the model and the caches the others read.
ANALYSIS_CHAPTERS := validating_the_lens rate_reduction_across_layers effective_rank transition_block \
	per_subject cond_vs_uncond dense_not_sparse beyond_isotropic_noise inside_the_image three_lenses \
	steering_through_subspaces controls architectures reproduce_on_pixart scorecard
CHAPTERS := training_the_organism capturing_activations $(ANALYSIS_CHAPTERS)
# Where executed chapters go: book/ (what the HTML renders) unless OUT_DIR says otherwise.
OUT_DIR ?= book
EXECUTED := $(CHAPTERS:%=$(OUT_DIR)/%.ipynb)
LIB_SOURCES := $(shell find lib -name '*.py' 2>/dev/null) $(wildcard data/prompts/*.yaml data/reference/*.yaml)

# Every capture of the run: the chapter's own parameters plus the sweep and control captures. The optional
# ones (capture-*-free.yaml: the free-running twin, which no chapter reads) run only when asked for, e.g.
# `make build/default/captures/capture-random-init-free.ipynb`.
CAPTURE_PARAMS := $(PARAMS_DIR)/capturing_activations.yaml \
	$(filter-out %-free.yaml,$(wildcard $(PARAMS_DIR)/capture-*.yaml))
CAPTURE_RUNS := $(patsubst $(PARAMS_DIR)/%.yaml,build/$(PARAMS_SET)/captures/%.ipynb,$(CAPTURE_PARAMS))
# A capture run is only a prerequisite of the chapter rule, which would make it an intermediate file that make
# deletes at the end of the run, so the next run would capture again.
.SECONDARY: $(CAPTURE_RUNS)

# Execute notebooks/$(1).md with parameters $(2) into $(3): papermill writes to a temporary file that
# replaces $(3) only when every cell ran and its rerun box is added (the command, parameters, caches and
# time; code collapsed), so a failed run never leaves a half-written chapter. First every key of $(2) is
# checked against the chapter's `parameters` cell: papermill would ignore a typo.
define execute_notebook
	$(BIN)/python -m subspacelens check-params notebooks/$(1).md $(2)
	@mkdir -p $(dir $(3)) build/tmp
	$(BIN)/jupytext --to ipynb --output - notebooks/$(1).md \
		| $(BIN)/papermill - build/tmp/$(notdir $(3)) -f $(2) $(4) --cwd $(CURDIR) --progress-bar
	$(BIN)/python -m subspacelens rerun-box build/tmp/$(notdir $(3)) $(1) $(2)
	mv build/tmp/$(notdir $(3)) $(3)
endef

.PHONY: FORCE help venv book smoke references chapter captures organisms test unit-tests nbval browser-test pdf bench format html clean

FORCE:

help:
	@echo "make book    - install (if needed), execute every chapter, build the HTML in _build/html"
	@echo "make test    - install (if needed), run pytest, nbval over the CI references and the browser test"
	@echo "make chapter NB=<name> PARAMS=<yaml>  - rerun one chapter with other parameters"
	@echo "make smoke   - every chapter on the small CI parameter set, into build/ci/book"
	@echo "make references - the same, into tests/references/ci (what make test's nbval checks)"
	@echo "make nbval NBVAL_SET=default - nbval over the book's own pages (full captures; as long as make book)"
	@echo "make pdf     - the whole book as one PDF in _build/pdf (offline, with Chromium)"
	@echo "make bench   - metric, capture and intervention benchmarks (prints measured ratios)"
	@echo "make organisms - train the 28-block organisms organism-s0..s2 (with twins and held-out evaluation)"
	@echo "make format  - format the chapters' code to the text column's width (ruff, via jupytext)"

venv: $(INSTALLED)

$(INSTALLED): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# --- the book -----------------------------------------------------------------------------------

book: $(INSTALLED)
	$(MAKE) -j$(JOBS) $(EXECUTED)
	$(MAKE) html

html: $(INSTALLED) $(MATHJAX)
	$(BIN)/jupyter-book build . -W -n --keep-going

$(MATHJAX):
	@mkdir -p build/tmp build/static/mathjax
	cd build/tmp && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null
	tar -xzf build/tmp/mathjax-$(MATHJAX_VERSION).tgz -C build/tmp
	cp -r build/tmp/package/es5/. build/static/mathjax/
	rm -rf build/tmp/package build/tmp/mathjax-$(MATHJAX_VERSION).tgz

# The book's organisms, one per training seed (seed 0 is the book's; 1 and 2 give the spread over training
# runs), each with its random-initialised twin and held-out evaluation: trained once and committed.
# `make organisms` trains the missing ones, JOBS at a time, one thread each (times: each one's
# training_log.json); RETRAIN=1 trains them all again, and everything captured from them follows.
ORGANISM_SEEDS := 0 1 2
ORGANISMS := $(ORGANISM_SEEDS:%=data/models/organism-s%/model_index.json)
organisms: $(INSTALLED)
	$(MAKE) -j$(JOBS) $(ORGANISMS)

data/models/organism-s%/model_index.json: $(if $(filter 1,$(RETRAIN)),FORCE) | $(INSTALLED)
	@mkdir -p build
	$(BIN)/python -m subspacelens train-organism --seed $* --size deep --recipe nested --out data/models \
		> build/train-organism-s$*.log 2>&1 || { tail -20 build/train-organism-s$*.log; exit 1; }

$(OUT_DIR)/training_the_organism.ipynb: notebooks/training_the_organism.md $(PARAMS_DIR)/training_the_organism.yaml $(LIB_SOURCES) $(ORGANISMS) | $(INSTALLED)
	$(call execute_notebook,training_the_organism,$(PARAMS_DIR)/training_the_organism.yaml,$@)

build/$(PARAMS_SET)/captures/%.ipynb: $(PARAMS_DIR)/%.yaml notebooks/capturing_activations.md $(ORGANISMS) | $(INSTALLED)
	$(call execute_notebook,capturing_activations,$<,$@)

captures: $(INSTALLED) $(ORGANISMS)
	$(MAKE) -j$(JOBS) $(CAPTURE_RUNS)

$(OUT_DIR)/capturing_activations.ipynb: build/$(PARAMS_SET)/captures/capturing_activations.ipynb
	@mkdir -p $(dir $@)
	cp $< $@

$(OUT_DIR)/%.ipynb: notebooks/%.md $(PARAMS_DIR)/%.yaml $(CAPTURE_RUNS) $(LIB_SOURCES)
	$(call execute_notebook,$*,$(PARAMS_DIR)/$*.yaml,$@)

# The scorecard reads the outcomes the interventions chapter writes.
$(OUT_DIR)/scorecard.ipynb: $(OUT_DIR)/steering_through_subspaces.ipynb

# Every chapter on the small CI parameter set (small caches under data/cache/ci), executed into
# build/ci/book: a quick end-to-end check that leaves the book and its nbval references as they are.
# Every chapter on the ci parameter set into $(1) (its small caches, data/cache/ci, captured first).
ci_chapters = $(MAKE) -j$(JOBS) $(CHAPTERS:%=$(1)/%.ipynb) PARAMS_SET=ci OUT_DIR=$(1)

smoke: $(INSTALLED)
	$(call ci_chapters,build/ci/book)

# make chapter NB=controls PARAMS=my-params.yaml: executes into build/chapters/, the book stays as it is.
chapter: $(INSTALLED)
	@test -n "$(NB)" -a -f "notebooks/$(NB).md" || { echo "NB must name a chapter in notebooks/ (got '$(NB)'); one of: $(CHAPTERS)"; exit 2; }
	@test -f "$(or $(PARAMS),$(PARAMS_DIR)/$(NB).yaml)" || { echo "no parameter file $(or $(PARAMS),$(PARAMS_DIR)/$(NB).yaml)$(if $(PARAMS),, for chapter '$(NB)'): give PARAMS=<yaml>, or create it (a forked chapter: copy the original's $(PARAMS_DIR)/<chapter>.yaml there)"; exit 2; }
	$(call execute_notebook,$(NB),$(or $(PARAMS),$(PARAMS_DIR)/$(NB).yaml),build/chapters/$(NB).ipynb)
	@echo "executed: build/chapters/$(NB).ipynb"

# --- tests --------------------------------------------------------------------------------------

test: unit-tests nbval browser-test

unit-tests: $(INSTALLED)
	$(BIN)/pytest tests --ignore=tests/browser -q -p no:cacheprovider -n $(JOBS)

# nbval re-executes a set of executed chapters against freshly captured caches, JOBS notebooks at a time
# (--dist loadfile: each notebook's cells in order on one worker), the longest recorded run first so no long
# chapter starts last; the scorecard after them, since it reads the outcomes of the steering chapter.
# NBVAL_SET picks the set: ci (what make test runs: every chapter executed on the small CI parameter set,
# committed in tests/references/ci by `make references`, so make test stays within its budget) or default
# (the book's own pages, book/*.ipynb, against the full captures: as long as `make book`).
NBVAL_SET ?= ci
NBVAL_DIR := $(if $(filter default,$(NBVAL_SET)),book,tests/references/$(NBVAL_SET))
NBVAL_CHAPTERS := $(CHAPTERS:%=$(NBVAL_DIR)/%.ipynb)
NBVAL := $(BIN)/pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	--nbval-cell-timeout 900 -q -p no:cacheprovider
nbval: $(INSTALLED)
	$(MAKE) captures PARAMS_SET=$(NBVAL_SET)
	$(NBVAL) -n $(JOBS) --dist loadfile \
		$$($(BIN)/python -m subspacelens longest-first $(filter-out %/scorecard.ipynb,$(NBVAL_CHAPTERS)))
	$(NBVAL) $(filter %/scorecard.ipynb,$(NBVAL_CHAPTERS))

# The nbval references of the CI parameter set, rebuilt whenever a chapter, the library or the organism
# changes (what `make smoke` runs, written where make test reads it).
references: $(INSTALLED)
	$(call ci_chapters,tests/references/ci)

# Debian's Chromium, for the browser test and the PDF (installed once, as root).
CHROMIUM := command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

browser-test: $(INSTALLED) html
	$(CHROMIUM)
	BOOK_HTML=$(CURDIR)/_build/html $(BIN)/pytest tests/browser -q -p no:cacheprovider -n $(JOBS) --dist loadgroup

# The whole book as one PDF (_build/pdf/subspacelens.pdf), printed offline by the same Chromium.
pdf: $(INSTALLED) html
	$(CHROMIUM)
	$(BIN)/python tools/book_pdf.py _build/html _build/pdf/subspacelens.pdf

# The chapters' code cells, formatted to what the text column shows (subspacelens.book.CODE_WIDTH);
# ruff leaves long strings and comments as they are, and tests/test_chapter_sources.py points at them.
format: $(INSTALLED)
	for notebook in notebooks/*.md; do \
		$(BIN)/jupytext --quiet --pipe "$(BIN)/ruff format --line-length $$($(BIN)/python -c 'from subspacelens.book import CODE_WIDTH; print(CODE_WIDTH)') -" $$notebook || exit 1; \
	done

bench: $(INSTALLED)
	OPENBLAS_NUM_THREADS=2 $(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/python benchmarks/bench_capture.py
	$(BIN)/python benchmarks/bench_tokens.py
	$(BIN)/python benchmarks/bench_intervene.py

clean:
	rm -rf _build build data/cache
