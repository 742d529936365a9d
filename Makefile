# drsync — the two commands of the quick start are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-unit lint typecheck soak bench clean venv sysdeps reliability-report lock audit

venv: $(STAMP)

# Reproducible installs: every dependency (dev extras included) at the version and hashes of
# requirements.lock, then drsync itself, editable, adding nothing (`make lock` regenerates it).
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# Re-resolve requirements.lock from pyproject.toml (after changing a dependency range).
lock:
	$(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install -q pip-tools
	.venv-lock/bin/pip-compile -q --generate-hashes --allow-unsafe --extra dev --strip-extras \
		--no-emit-index-url --no-emit-find-links --no-emit-trusted-host -o requirements.lock pyproject.toml
	rm -rf .venv-lock

# Known vulnerabilities in the locked dependencies (pip-audit, in its own venv). Needs the
# vulnerability database on the network: without a network it says so and succeeds.
audit:
	@$(PYTHON) -m venv .venv-audit && .venv-audit/bin/pip install -q pip-audit >/dev/null 2>&1 \
		|| { echo "audit: skipped, pip-audit cannot be installed (no network?)"; rm -rf .venv-audit; exit 0; }; \
	out=$$(.venv-audit/bin/pip-audit --progress-spinner off --strict --require-hashes --disable-pip \
		-r requirements.lock 2>&1); rc=$$?; rm -rf .venv-audit; \
	if [ $$rc -ne 0 ] && ! echo "$$out" | grep -qE "^Found [0-9]+ known vulnerabilit" \
		&& echo "$$out" | grep -qiE "could not be audited|connection|resolve|timed out|max retries"; then \
		echo "audit: skipped, the vulnerability database is not reachable (no network?)"; exit 0; fi; \
	echo "$$out"; exit $$rc

demo: $(STAMP)
	$(BIN)/python -m drsync.demo --dir demo

# Tests talk to a real OpenSSH server on 127.0.0.1 (started by the tests, never a system
# service), benchmarks compare with rsync, and the dashboard is tested in Debian's headless
# Chromium: install them when missing (we are root on CI).
# time: Debian's /usr/bin/time, whose -v gives bench/rss.py the peak RSS of each command.
sysdeps:
	@if ! test -x /usr/sbin/sshd || ! command -v rsync >/dev/null || ! command -v ssh-keygen >/dev/null \
		|| ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
		|| ! test -x /usr/bin/time; then \
		echo "installing openssh-server, openssh-client, rsync, chromium, chromium-driver, time"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends openssh-server openssh-client rsync chromium chromium-driver time >/dev/null; \
	fi

# Independent tests run on four pytest-xdist workers on 2 cores (most of a test's time is waiting for
# sshd, subprocesses and fsync, not CPU); `worksteal`: a worker that runs out takes tests
# queued for another, so a long kill test queued late does not finish alone; the 25 slowest
# are listed at the end.
test: $(STAMP) sysdeps lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 4 --dist worksteal --durations=25 tests

# The developer's loop: unit tests only (no sshd, no daemons), under a minute.
test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 tests/unit

lint: $(STAMP)
	$(BIN)/ruff check drsync tests bench
	$(BIN)/mypy

# The fault-injection suite with more iterations of every fault (tests/faults; DRSYNC_SOAK=1).
soak: $(STAMP) sysdeps
	DRSYNC_SOAK=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/faults

# Run tests/faults and write docs/reliability.md from the trials it records (SOAK=1: longer run).
reliability-report: $(STAMP) sysdeps
	$(BIN)/python bench/reliability_report.py $(if $(SOAK),--soak)

bench: $(STAMP) sysdeps
	$(BIN)/python bench/incremental.py

clean:
	rm -rf $(VENV) .venv-lock .venv-audit demo .pytest_cache .mypy_cache .ruff_cache
