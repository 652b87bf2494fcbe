# One command surface, the same locally and in CI.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test test-fast lint bench load-tools redis-binary media-tools browser n8n-e2e clean faults soak

$(STAMP): setup.cfg
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Tests start private redis-server processes; install the binary where it is missing.
redis-binary:
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }

# ffprobe reads video metadata (a pure-Python MP4 reader stands in where it cannot be installed).
media-tools:
	@command -v ffprobe >/dev/null || { apt-get update -qq && apt-get install -y -qq ffmpeg; } \
	  || echo "ffmpeg could not be installed: the MP4 reader will be used"

# The status page's test renders it in headless Chromium (it skips, saying so, without one).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; } \
	  || echo "chromium could not be installed: the status page's browser test will skip"

# `make run` uses REDIS_URL, and starts (then stops) a local Redis when none answers there.
run: $(STAMP) redis-binary media-tools
	REDIS_URL=$(REDIS_URL) scripts/with-redis "$(REDIS_URL)" $(BIN)/videopoll run-demo

# Two xdist workers: most of the suite waits on real processes (stacks, fakes), and each
# file stays on one worker so its stacks start once (tests/conftest.py groups them).
PYTEST_WORKERS ?= 2
test: $(STAMP) redis-binary media-tools browser
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

test-fast: $(STAMP) redis-binary media-tools
	$(BIN)/pytest -m "not slow and not e2e"

# Every fault test (a real kill, a stopped server, a cut connection; RabbitMQ runs are skipped
# when it is not on 127.0.0.1:5672), then docs/RELIABILITY.md from the figures they wrote.
faults: $(STAMP) redis-binary media-tools
	rm -f var/reliability/faults.json
	$(BIN)/pytest tests/e2e/test_faults*.py tests/e2e/test_resilience.py; status=$$?; \
	  $(BIN)/python scripts/reliability_report; exit $$status

# The long soak (not in CI): 5,000 mixed jobs over 10 minutes, a worker killed every minute,
# Redis restarted once, retention waited out; its row goes to docs/RELIABILITY.md.
soak: $(STAMP) redis-binary media-tools
	SOAK_JOBS=5000 SOAK_SECONDS=600 SOAK_KILL_EVERY=60 $(BIN)/pytest -s --timeout 1500 \
	  tests/e2e/test_faults_soak.py; status=$$?; $(BIN)/python scripts/reliability_report; \
	  exit $$status

lint: $(STAMP)
	$(BIN)/ruff check videopoll tests celeryconfig.py
	$(BIN)/mypy videopoll celeryconfig.py

# The benchmark's load generator runs in its own process: wrk, from Debian.
load-tools:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

# Prints the table and writes bench/results/latest.json and latest.md (a few minutes).
bench: $(STAMP) redis-binary load-tools
	$(BIN)/python -m videopoll.bench

# examples/n8n against a real n8n (about 3 GB under var/; not part of `make test` or CI).
# n8n 2.40 needs Node.js 24: the registry's node-linux-<arch> package ships it. npm runs no
# install scripts (some fetch from outside the registry: librdkafka's sources, prebuilt
# binaries); sqlite3, the one native module n8n needs to start, is built here from source.
N8N := var/n8n/node_modules/.bin/n8n
N8N_NODE = var/n8n-node/node_modules/node-linux-$(shell node -p process.arch)
$(N8N): examples/n8n/package.json
	mkdir -p var/n8n-node && cd var/n8n-node && echo '{"private": true}' > package.json && \
	  npm install --no-audit --no-fund --loglevel=error --ignore-scripts \
	  node-linux-$$(node -p process.arch)@24
	mkdir -p var/n8n && cp examples/n8n/package.json var/n8n/package.json
	cd var/n8n && npm install --no-audit --no-fund --loglevel=error --ignore-scripts
	cd var/n8n && PATH=$(abspath $(N8N_NODE))/bin:$$PATH npm_config_nodedir=$(abspath $(N8N_NODE)) \
	  npm rebuild sqlite3 --loglevel=error
	touch $(N8N)

n8n-e2e: $(STAMP) redis-binary $(N8N)
	$(BIN)/python examples/n8n/e2e.py --n8n $(N8N) --node-bin $(N8N_NODE)/bin

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
