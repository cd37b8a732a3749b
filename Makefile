# `make run` and `make test` create .venv when it is missing and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run screenshot test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	# SAM 2 is an sdist that builds against the torch just installed, without its CUDA extension.
	SAM2_BUILD_CUDA=0 $(BIN)/python -m pip install --no-build-isolation 'sam2==1.1.0'
	touch $(STAMP)

install: $(STAMP)

# The app on the sample project (generated into sample-project/, git-ignored, on the first run).
run: $(STAMP)
	$(BIN)/segassist --sample sample-project

# The README's picture: the sample project, a small model trained on it, an unlabelled image segmented.
SAMPLE_MODEL := sample-project/models/sample-deeplabv3plus.safetensors
screenshot: $(STAMP)
	test -f sample-project/segassist.json || $(BIN)/python -m resources.sample_project sample-project
	test -f $(SAMPLE_MODEL) || $(BIN)/python -m training --images sample-project --labels sample-project/labels \
		--classes sample-project/segassist.json --arch deeplabv3plus --backbone efficientnet_lite0 --pretrained imagenet \
		--crop 128 --batch 4 --iters 200 --val-fraction 0.2 --out $(SAMPLE_MODEL)
	QT_QPA_PLATFORM=offscreen $(BIN)/segassist sample-project --model $(SAMPLE_MODEL) --image scene_05.png \
		--size 1440x900 --screenshot docs/main-window.png

# The suite in pytest-xdist workers, one per core (`make test WORKERS=0`: in one process); a file's tests run
# in one worker (--dist loadfile), so a module fixture is built once.
WORKERS ?= auto
test: $(STAMP)
	$(BIN)/ruff check .
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
