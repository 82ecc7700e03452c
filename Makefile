# CNN studio: `make run` serves the app, `make test` runs every test. Both set up what is missing first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.stamp
DATA := $(or $(CNN_DATA_DIR),data)
PORT ?= 8501

.PHONY: run dev test data venv browser web clean space space-gradio space-static classroom classroom-small classroom-class

run: $(STAMP) data
	$(PY) -m streamlit run app.py --server.port $(PORT)

# For whoever changes the app: Streamlit's developer toolbar (rerun, clear cache) and pages rerun on save.
dev: $(STAMP) data
	$(PY) -m streamlit run app.py --server.port $(PORT) --client.toolbarMode developer --server.fileWatcherType auto \
		--server.runOnSave true

test: $(STAMP) data browser web
	$(PY) -m pytest

venv: $(STAMP)

# Reinstalls only when requirements.txt changes (or .venv is gone).
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

data: $(STAMP) $(DATA)/mnist/t10k-labels-idx1-ubyte $(DATA)/fashion-mnist/t10k-labels-idx1-ubyte

$(DATA)/%/t10k-labels-idx1-ubyte: | $(STAMP)
	$(PY) -m cnn_core fetch-data --dataset $*

# The real-browser tests use Debian's Chromium (and an emoji font, so screenshots show the page icons);
# install it when we can (root), else e2e skips loudly.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-color-emoji >/dev/null) ; } || \
		echo "!! chromium not installed: browser tests will be skipped (run as root or install chromium)"

# The web export's runtime (a model as a stand-alone page, cnn_core/webpage.py): onnxruntime-web from npm, pinned
# in package.json with its hashes in package-lock.json, vendored into cnn_core/web/vendor/ (neither is in git).
# Without npm the web export and its tests are skipped, loudly.
ORT_PACKAGE := node_modules/onnxruntime-web/package.json
ORT_VENDOR := cnn_core/web/vendor/VERSION

web:
	@command -v npm >/dev/null || { echo "!! npm not installed: no web export here, its tests will be skipped (install Node.js and npm)"; exit 0; } ; \
		$(MAKE) --no-print-directory $(ORT_VENDOR)

$(ORT_PACKAGE): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(ORT_VENDOR): $(ORT_PACKAGE) | $(STAMP)
	$(PY) -m cnn_core.webpage node_modules/onnxruntime-web

# A class on one laptop (bench/classroom_load.py: headless clients on loopback; figures in docs/performance.md).
# `classroom`: 25 watchers + 5 drawers for 10 minutes; `classroom-small`: 6 sessions for 20 s;
# `classroom-class`: thirty students in class mode for 10 minutes.
classroom: $(STAMP) data
	$(PY) bench/classroom_load.py --watchers 25 --drawers 5 --duration 600 --batch-size 32

classroom-small: $(STAMP) data
	$(PY) bench/classroom_load.py --watchers 4 --drawers 2 --duration 20

# The same thirty students in a class (teacher link, joins by name, 5 students training in fair turns, the board).
classroom-class: $(STAMP) data
	$(PY) bench/classroom_load.py --class --watchers 25 --drawers 5 --trainers 5 --duration 600 --batch-size 32

# A ready-to-push Hugging Face Space: build/space/ (Docker, Streamlit), build/space-gradio/ (the Gradio twin) or
# build/space-static/ (the pretrained MNIST model as one web page, sdk: static: no server at all).
space: $(STAMP) web
	$(PY) deploy/space/assemble.py --out build/space

space-gradio: $(STAMP)
	$(PY) deploy/space/assemble.py --kind gradio --out build/space-gradio

space-static: $(STAMP) web
	$(PY) deploy/space/assemble.py --kind static --out build/space-static

clean:
	rm -rf $(VENV) .pytest_cache
