# srlab: common commands. `make help` lists them.
PYTHON ?= python
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: help install test test-fast train smoke clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install:  ## install srlab (editable) with the test tools
	$(PYTHON) -m pip install -e ".[dev]"

test:  ## run the whole test suite (slow tests included)
	$(PYTHON) -m pytest

test-fast:  ## skip the tests marked slow
	$(PYTHON) -m pytest -m "not slow"

train:  ## the default training: the CPU quickstart on the bundled sample photos
	$(PYTHON) -m srlab.train

smoke:  ## two training steps, to check an install
	$(PYTHON) -m srlab.train debug=smoke

clean:  ## remove run outputs and caches
	rm -rf outputs multirun .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
