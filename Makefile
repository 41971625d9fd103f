# srlab: common commands. `make help` lists them.
PYTHON ?= python
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: help install test test-fast train smoke sweep search report bench clean
RUNS ?= $(lastword $(sort $(wildcard multirun/*/*)))
OUT ?= report

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install:  ## install srlab (editable) with the test tools, the ONNX runtimes (deploy), PyAV (video), lmdb + litdata (data)
	$(PYTHON) -m pip install -e ".[dev,deploy,video,data]"

test:  ## run the whole test suite (slow tests included)
	$(PYTHON) -m pytest

test-fast:  ## skip the tests marked slow
	$(PYTHON) -m pytest -m "not slow"

train:  ## the default training: the CPU quickstart on the bundled sample photos
	$(PYTHON) -m srlab.train

smoke:  ## two training steps, to check an install
	$(PYTHON) -m srlab.train debug=smoke

sweep:  ## demo grid sweep, CPU-sized (phase 2's small nets, 1 epoch): SRGAN/ESRGAN x 2 G learning rates
	$(PYTHON) -m srlab.train -m experiment=phase2 model.optimizer_g.lr=1e-4,2e-4 trainer.max_epochs=1 $(ARGS)

search:  ## Optuna search over ESRGAN lrs and loss weights (resumable, ./optuna.db)
	$(PYTHON) -m srlab.train hparams_search=esrgan_optuna $(ARGS)

report:  ## HTML+Markdown comparison: make report RUNS="outputs/... multirun/..." OUT=report (default: latest sweep)
	$(PYTHON) -m srlab.compare $(RUNS) -o $(OUT)

bench:  ## performance harness: ceilings, train steps, data loader, inference (writes experiments/benchmarks/)
	$(PYTHON) -m srlab.bench $(ARGS)

clean:  ## remove run outputs and caches
	rm -rf outputs multirun report optuna.db .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
