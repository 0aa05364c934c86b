# Awasi: everything a fresh machine of this kind needs, and the usual tasks.
# `make dev` runs the platform on the embedded default; `make test` runs the suite.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install dev test test-fast bench lint mutate clean pdf-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian's Chromium for the browser tests (Playwright never downloads a browser here).
/usr/bin/chromium:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null

# Debian's Prometheus, for `promtool check rules` on deploy/prometheus in the tests.
/usr/bin/promtool:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# WeasyPrint (the PDF evaluation reports) needs Pango and a font with Indonesian and
# the report's signs; Chromium brings Pango, but a fresh machine may lack either.
PDF_DEBS := fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0
pdf-deps:
	@dpkg -s $(PDF_DEBS) >/dev/null 2>&1 || { \
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(PDF_DEBS) >/dev/null; }

# npm, only to fetch axe-core (the accessibility engine tests/test_accessibility.py
# runs in Chromium) from the npm registry; no Node code runs in Awasi.
/usr/bin/npm:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null

AXE := .cache/axe/axe.min.js
$(AXE): | /usr/bin/npm
	rm -rf .cache/axe && mkdir -p .cache/axe
	cd .cache/axe && npm pack --silent axe-core@4 >/dev/null && \
	tar xzf axe-core-*.tgz package/axe.min.js package/LICENSE && \
	mv package/axe.min.js package/LICENSE . && rmdir package && rm axe-core-*.tgz

# The official AsyncAPI 3.0.0 JSON Schema (npm @asyncapi/specs, bundled, bindings
# included): tests/test_asyncapi.py validates docs/asyncapi.yaml against it.
ASYNCAPI_SCHEMA := .cache/asyncapi/asyncapi-3.0.0.json
$(ASYNCAPI_SCHEMA): | /usr/bin/npm
	rm -rf .cache/asyncapi && mkdir -p .cache/asyncapi
	cd .cache/asyncapi && npm pack --silent @asyncapi/specs@6 >/dev/null && \
	tar xzf asyncapi-specs-*.tgz 'package/schemas/3.0.0-without-$$id.json' package/LICENSE && \
	mv 'package/schemas/3.0.0-without-$$id.json' asyncapi-3.0.0.json && \
	mv package/LICENSE . && rm -r package asyncapi-specs-*.tgz

install: $(STAMP) /usr/bin/chromium /usr/bin/promtool pdf-deps $(AXE) $(ASYNCAPI_SCHEMA)

dev: $(STAMP) pdf-deps
	$(BIN)/awasi dev

test: install
	$(BIN)/pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/pytest -q -x -m "not slow and not browser"

bench: $(STAMP)
	$(BIN)/python bench/backbone.py

# Mutation testing of the pure rules ([tool.mutmut] in pyproject.toml): minutes, not in
# CI. One child: the machine is shared. Figures and equivalent mutants: docs/TESTING.md.
mutate: $(STAMP)
	$(BIN)/mutmut run --max-children 1; $(BIN)/mutmut results

lint: $(STAMP)
	$(BIN)/ruff check awasi services tests bench

clean:
	rm -rf $(VENV) .pytest_cache mutants
