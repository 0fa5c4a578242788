# The two commands of the README:  make sim   and   make test
# Everything the project needs is installed here, into .venv, from pinned versions.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# Regular (non-editable) install: only then are launch/, config/ and urdf/ in the share directory
# that ament_index finds. Re-installed whenever a packaged file changes.
SOURCES := $(shell find smartcell launch config urdf resource -type f -not -name '*.pyc' 2>/dev/null) setup.py setup.cfg package.xml
export AMENT_PREFIX_PATH := $(abspath $(VENV))
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

DURATION ?= 300
SEED     ?= 1
PYTEST_ARGS ?=

.PHONY: sim test lint venv bench clean

sim: $(VENV)/.smartcell-installed
	$(BIN)/smartcell sim --duration $(DURATION) --seed $(SEED)

test: $(VENV)/.smartcell-installed lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Zero findings: ruff (ruff.toml) over the code, tests and benches; mypy (mypy.ini) over the smartcell package.
lint: $(VENV)/.smartcell-installed
	$(BIN)/ruff check smartcell test bench launch setup.py
	$(BIN)/mypy

venv: $(VENV)/.smartcell-installed

$(VENV)/.requirements-installed: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3 || $(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt setuptools==84.2.1
	touch $@

# ROS interface packages the ROS wheels on PyPI lack (tf2_msgs for /tf): built into the venv with
# Debian's cmake and gcc, only where `import <pkg>.msg` fails (a ROS installation provides them).
$(VENV)/.interfaces-built: $(VENV)/.requirements-installed requirements-build.txt tools/build_interfaces.sh $(shell find interfaces -type f 2>/dev/null)
	tools/build_interfaces.sh $(VENV)
	touch $@

$(VENV)/.smartcell-installed: $(VENV)/.requirements-installed $(VENV)/.interfaces-built $(SOURCES)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --force-reinstall .
	rm -rf build smartcell.egg-info
	# colcon installs node executables in <prefix>/lib/smartcell (setup.cfg); pip only in bin/.
	# launch_ros (ros2 launch / ros2 run) looks in <prefix>/lib/<package>/: link them there.
	mkdir -p $(VENV)/lib/smartcell
	for exe in $$($(BIN)/python -c "from importlib.metadata import distribution as d; print(*sorted(e.name for e in d('smartcell').entry_points if e.group == 'console_scripts'))"); do \
	  ln -sfn ../../bin/$$exe $(VENV)/lib/smartcell/$$exe; done
	touch $@

bench: $(VENV)/.smartcell-installed
	for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build smartcell.egg-info
