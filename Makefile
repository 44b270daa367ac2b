# sensornode: every entry point a user needs. `make sim` and `make test` on a fresh machine.
# Each target sets up what it needs (the .venv from pinned requirements, umqtt.simple, stubs).

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
BUILD   := build
STAMP   := $(VENV)/.installed
UMQTT   := $(BUILD)/umqtt/umqtt/simple.py
STUBS   := $(BUILD)/stubs/.installed

BOARD   ?= esp32
PORT    ?=
BROKER  ?=
DEVICE  ?=
DURATION ?=
CSV     ?=
PLOT    ?=
ID      ?=
FS      ?=
SERIAL  ?=
HEAP    ?=
# make test runs its test files in this many processes: the virtual boards mostly wait, so
# three keep a 2-core machine busy without starving a board's timing.
JOBS    ?= 3
KEY     ?=
SECRETS ?=
FORCE   ?=
TRIAL   ?=
OTA_SRC ?=
VALUE   ?=
UMQTT   ?=
SETUP   ?=

opt = $(if $($(1)),$(2) $($(1)))

.PHONY: help setup test test-ota test-fast test-ha lint compile sim vboard listen plot flash repl reset ls provision erase-config bench bench-heap brokers clean get set ota browser valgrind

help:
	@echo "make sim        a broker, a virtual board and a live view of its readings (start here)"
	@echo "make test       every test: host logic, virtual boards on real brokers, flashing"
	@echo "make test-fast  only the host tests that start no process (seconds)"
	@echo "make test-ota   an update over the air cut by power at 20 points (minutes)"
	@echo "make test-ha    the firmware's discovery against a real Home Assistant"
	@echo "make flash      [BOARD=esp32|picow] [PORT=...] [NOLINES=1]: compile and copy the firmware to a board"
	@echo "make repl | reset | ls | provision | erase-config    [PORT=...]"
	@echo "make listen     [BROKER=host:port] [DEVICE=id] [CSV=file [PLOT=1]]: watch every node's readings"
	@echo "make plot       CSV=file: a PNG per device of every reading over time"
	@echo "make ota        DEVICE=id|all [BROKER=] [FORCE=1] [TRIAL=s] [NOLINES=1]: update nodes over the air"
	@echo "make get        DEVICE=id [KEY=mqtt.port] [BROKER=]: a node's running settings"
	@echo "make set        DEVICE=id KEY=interval_s VALUE=30 [BROKER=]: change one, kept in config.json"
	@echo "make vboard     [BROKER=] [ID=] [BOARD=] [FS=] [SERIAL=] [HEAP=] [UMQTT=1.3.4..1.8.0]: one virtual board"
	@echo "make vboard SETUP=1   a fresh board that knows no network: its setup page comes up"
	@echo "                the console says where (setup: portal at http://127.0.0.1:PORT/)"
	@echo "make bench-heap the net resident heap and its parts alone (a minute)"
	@echo "make lint | compile | bench | setup | clean"

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(UMQTT): $(STAMP) tools/fetch_umqtt.py
	$(PY) -m tools.fetch_umqtt --out $(BUILD)/umqtt

$(STUBS): $(STAMP) requirements-stubs.txt
	rm -rf $(BUILD)/stubs
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target $(BUILD)/stubs/esp32 \
		$$(grep -E '^(micropython-esp32|micropython-stdlib)' requirements-stubs.txt)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target $(BUILD)/stubs/picow \
		$$(grep -E '^(micropython-rp2|micropython-stdlib)' requirements-stubs.txt)
	touch $@

setup: $(STAMP) $(UMQTT) brokers browser

# Mosquitto is a Debian package: installed when running as root and missing; amqtt stands in otherwise.
brokers:
	@command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null) \
	    || echo "mosquitto not installed: tests and make sim use amqtt"; }

# Debian's Chromium, for the setup portal's browser test: installed when running as root and
# missing; without it that test is skipped and says why.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null) \
	    || echo "chromium not installed: the browser tests (setup page, HA device page) are skipped"; }

test: setup
	$(PY) -m pytest host_tests --ignore=host_tests/ha -m "not fleet" -n $(JOBS) --dist loadfile

# Updates over the air, the heavy part: an update cut by power at 20 points (a few minutes).
test-ota: setup
	$(PY) -m pytest host_tests --ignore=host_tests/ha -m fleet

# The host tests that start no process (no broker, board, MicroPython or compiler): seconds.
test-fast: $(STAMP)
	$(PY) -m pytest host_tests --ignore=host_tests/ha -m "not slow"

# A real Home Assistant (pinned, in build/ha/venv) against a virtual board: see host_tests/ha/.
test-ha: setup
	$(PY) -m tools.ha_install
	$(PY) -m pytest host_tests/ha -s -p no:cacheprovider

lint: $(STAMP) $(STUBS) $(UMQTT)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pyright -p tools/pyright/esp32.json --pythonpath /bin/false
	$(VENV)/bin/pyright -p tools/pyright/picow.json --pythonpath /bin/false
	$(VENV)/bin/pyright -p tools/pyright/host.json

compile: $(STAMP)
	$(PY) -m tools.compile --arch xtensawin --out $(BUILD)/mpy/xtensawin
	$(PY) -m tools.compile --arch armv6m --out $(BUILD)/mpy/armv6m

sim: setup
	$(PY) -m tools.sim $(call opt,BROKER,--broker) $(call opt,DURATION,--duration)

vboard: setup
	$(PY) -m tools.vboard $(call opt,BROKER,--broker) $(call opt,ID,--id) --board $(BOARD) \
		$(call opt,FS,--fs) $(call opt,SERIAL,--serial) $(call opt,HEAP,--heap) $(call opt,UMQTT,--umqtt) $(if $(SETUP),--setup)

listen: $(STAMP)
	$(PY) -m tools.listen $(call opt,BROKER,--broker) $(call opt,DEVICE,--device) \
		$(call opt,CSV,--csv) $(if $(PLOT),--plot)

plot: $(STAMP)
	$(PY) -m tools.plot $(if $(CSV),$(CSV),$(error make plot needs CSV=file, e.g. CSV=readings.csv))

flash: $(STAMP)
	$(PY) -m tools.flash flash $(if $(filter command line environment,$(origin BOARD)),--board $(BOARD)) $(call opt,PORT,--port) $(if $(NOLINES),--no-line-numbers)

repl: $(STAMP)
	$(PY) -m tools.flash repl $(call opt,PORT,--port)

reset: $(STAMP)
	$(PY) -m tools.flash reset $(call opt,PORT,--port)

ls: $(STAMP)
	$(PY) -m tools.flash ls $(call opt,PORT,--port)

provision: $(STAMP)
	$(PY) -m tools.flash provision $(call opt,PORT,--port)

erase-config: $(STAMP)
	$(PY) -m tools.flash erase-config $(call opt,PORT,--port)

ota: $(STAMP)
	$(PY) -m tools.ota '$(DEVICE)' $(call opt,BROKER,--broker) $(call opt,SECRETS,--secrets) \
		$(if $(FORCE),--force) $(call opt,TRIAL,--trial) $(call opt,OTA_SRC,--src) \
		$(if $(NOLINES),--no-line-numbers)

get: $(STAMP)
	$(PY) -m tools.remote get '$(DEVICE)' $(if $(KEY),'$(KEY)') $(call opt,BROKER,--broker)

set: $(STAMP)
	$(PY) -m tools.remote set '$(DEVICE)' '$(KEY)' '$(VALUE)' $(call opt,BROKER,--broker)

bench: setup valgrind
	$(PY) -m tools.bench

# The net resident heap and its parts alone, in under a minute: what a change to the firmware's
# size costs, without the quarter-hour bench.
bench-heap: setup
	$(PY) -m tools.bench --heap

# Debian's valgrind, for the bench's instructions per cycle: installed when running as root and
# missing; without it that row says n/a.
valgrind:
	@command -v valgrind >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null) \
	    || echo "valgrind not installed: the bench's instructions per cycle are n/a"; }

clean:
	rm -rf $(BUILD)
