# llmfleet — build, test, bench, demo.
#   make            build bin/llmfleet and bin/llmfleet-fakeapi
#   make test       unit + integration + SDK fidelity tests
#   make test-san   the same suite built with SANITIZE=address,undefined
#   make bench      benchmarks (figures go in README.md)
#   make demo       a real fleet against the fake API
#   make install    bin/llmfleet and the systemd unit (PREFIX, DESTDIR)
# V=1 shows the commands.

CC       ?= cc
SANITIZE ?=
OPT      ?= -O2

ifeq ($(SANITIZE),)
BUILD    := build/release
BIN      := bin
else
BUILD    := build/san
BIN      := build/san/bin
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

# Dependencies run one way: worker/cmd (subcommands) -> worker -> fleet
# protocol (common/fleet) -> API knowledge (common/api) -> pure shelf
# (common/shelf). The fake API uses the shelf only.
INCS     := -Icommon/shelf -Icommon/api -Icommon/fleet -Iworker -Iworker/cmd
CFLAGS   := -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror -MMD -MP \
            $(INCS) -I$(BUILD) $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS  := $(SANFLAGS)
LIBS     := -lhiredis -lcurl -levent -lm

ifeq ($(V),1)
Q :=
else
Q := @
endif

DEPS_STAMP := build/.deps-installed

SHELF_SRC  := $(wildcard common/shelf/*.c)
COMMON_SRC := $(SHELF_SRC) $(wildcard common/api/*.c) \
              $(filter-out %/genproto.c,$(wildcard common/fleet/*.c))
WORKER_SRC := $(wildcard worker/*.c worker/cmd/*.c)
FAKE_SRC   := $(wildcard tests/fakeapi/*.c)
LUA_SRC    := $(sort $(wildcard scripts/lua/*.lua))
# The Lua libraries, in dependency order, after the generated prelude.
LUA_LIBS   := $(BUILD)/proto.lua $(addprefix scripts/lua/lib/,util.lua limits.lua \
              class.lua pause.lua bucket.lua lease.lua retry.lua stats.lua pace.lua claim.lua)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

SHELF_OBJ  := $(SHELF_SRC:%.c=$(BUILD)/%.o)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o) $(BUILD)/lua_scripts.o
WORKER_OBJ := $(WORKER_SRC:%.c=$(BUILD)/%.o)
FAKE_OBJ   := $(FAKE_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BIN)/tests/%)

all: $(BIN)/llmfleet $(BIN)/llmfleet-fakeapi $(BIN)/freeport

$(DEPS_STAMP): scripts/install-deps.sh
	@mkdir -p $(dir $@)
	$(Q)sh scripts/install-deps.sh
	@touch $@

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# proto.def is the one list of names and numbers both sides use: C
# includes it, genproto writes it as the Lua prelude.
$(BUILD)/genproto: common/fleet/genproto.c common/fleet/proto.h common/fleet/proto.def
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ $<

$(BUILD)/proto.lua: $(BUILD)/genproto
	$(Q)$< > $@

# Lua scripts are embedded as C strings, one per file, named by file.
$(BUILD)/lua_scripts.c: $(LUA_SRC) $(LUA_LIBS) scripts/embed-lua.sh
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LUA   $@")
	$(Q)sh scripts/embed-lua.sh "$(LUA_LIBS)" $(LUA_SRC) > $@

$(BUILD)/lua_scripts.o: $(BUILD)/lua_scripts.c
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BIN)/llmfleet: $(WORKER_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/llmfleet-fakeapi: $(FAKE_OBJ) $(SHELF_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/freeport: $(BUILD)/tests/tools/freeport.o
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

# Preloaded into redis-server by the tests to step its clock: never
# sanitized (the sanitizer runtime must come first in a sanitized process).
$(BIN)/clockshim.so: tests/tools/clockshim.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

$(BIN)/tests/%: $(BUILD)/tests/unit/%.o $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

# ---- tests -----------------------------------------------------------------

test: all $(UNIT_BIN) $(BIN)/clockshim.so
	$(Q)LLMFLEET_BIN=$(abspath $(BIN)) bash tests/run.sh $(UNIT_BIN)

test-unit: $(UNIT_BIN)
	$(Q)sh tests/run-unit.sh $(UNIT_BIN)

test-integration: all $(BIN)/clockshim.so
	$(Q)LLMFLEET_BIN=$(abspath $(BIN)) bash tests/integration/run.sh

test-sdk: all
	$(Q)LLMFLEET_BIN=$(abspath $(BIN)) bash tests/sdk/run.sh

# The sanitizer run (LLMFLEET_SHORT) skips the suites that run once:
# workloads, cluster, Sentinel, TLS. LLMFLEET_SAN: each test stops its
# workers with SIGTERM before it reads the logs, so that LeakSanitizer's
# check at exit runs (the cleanup's SIGKILL skips it).
test-san:
	$(Q)LLMFLEET_SHORT=1 LLMFLEET_SAN=1 $(MAKE) --no-print-directory SANITIZE=address,undefined test

# The unit tests and the worker under valgrind's memcheck: every unit test
# binary, and the worker in the integration tests that cover most of its
# paths (names matched as parts: test_dead runs test_dead_big too), whose
# deadlines allow a slower worker; their workers are stopped with SIGTERM
# before the logs are read, so that valgrind's leak check runs. Any report
# fails: an error, or a block definitely lost at exit. (~5 min)
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full \
	--show-leak-kinds=definite --errors-for-leak-kinds=definite
VALGRIND_TESTS ?= test_jobs test_badinput test_api_faults test_retry \
	test_fleet_retry test_dead test_key_leaks test_settle_group test_sigterm \
	test_poison test_fleet_spend test_wake test_spend_kinds test_prices \
	test_batch test_metrics test_redis_faults test_cluster test_crash_points
test-valgrind: all $(UNIT_BIN) $(BIN)/clockshim.so
	$(Q)UNIT_WRAP="$(VALGRIND)" sh tests/run-unit.sh $(UNIT_BIN)
	$(Q)LLMFLEET_WRAP="$(VALGRIND)" ONLY="$(VALGRIND_TESTS)" \
	    LLMFLEET_BIN=$(abspath $(BIN)) bash tests/integration/run.sh

# Long variants of the reliability tests.
chaos: all
	$(Q)CHAOS_JOBS=$${CHAOS_JOBS:-20000} LLMFLEET_BIN=$(abspath $(BIN)) ONLY=test_chaos \
	    bash tests/integration/run.sh

# ---- bench and demo ----------------------------------------------------------

$(BIN)/libfloor: $(BUILD)/tests/bench/libfloor.o
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/estspeed: $(BUILD)/tests/bench/estspeed.o $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

bench: all $(BIN)/libfloor $(BIN)/estspeed
	$(Q)LLMFLEET_BIN=$(abspath $(BIN)) bash scripts/bench.sh

demo: all
	$(Q)LLMFLEET_BIN=$(abspath $(BIN)) bash scripts/demo.sh

# make install [PREFIX=/usr/local] [DESTDIR=]: the llmfleet binary, the
# systemd template unit (its ExecStart pointing at that binary) and an
# example environment file. The runtime needs only scripts/runtime-deps.txt.
# INSTALL_FROM=DIR installs DIR/llmfleet as it is (built elsewhere).
PREFIX  ?= /usr/local
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR  ?= $(PREFIX)/share/doc/llmfleet
install: $(if $(INSTALL_FROM),,$(BIN)/llmfleet)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	install -m 755 $(or $(INSTALL_FROM),$(BIN))/llmfleet $(DESTDIR)$(PREFIX)/bin/llmfleet
	sed 's|@BINDIR@|$(PREFIX)/bin|g' scripts/systemd/llmfleet-worker@.service \
	    > $(DESTDIR)$(UNITDIR)/llmfleet-worker@.service
	chmod 644 $(DESTDIR)$(UNITDIR)/llmfleet-worker@.service
	install -m 644 scripts/systemd/worker.env.example scripts/runtime-deps.txt \
	    $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/llmfleet $(DESTDIR)$(UNITDIR)/llmfleet-worker@.service
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build/release build/san bin

# Keep unit test objects between runs.
.SECONDARY:

.PHONY: all test test-unit test-integration test-sdk test-san test-valgrind bench demo clean chaos install uninstall

-include $(COMMON_OBJ:.o=.d) $(WORKER_OBJ:.o=.d) $(FAKE_OBJ:.o=.d) \
         $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.d)

# ---- fuzzing -------------------------------------------------------------------
# libFuzzer targets (ASan + UBSan) for the parsers that read untrusted input:
# jobs, API response bodies, rate-limit headers. Built with clang straight
# from the sources into build/fuzz/, apart from the normal build.
#   make fuzz-build                  build the targets
#   make fuzz [FUZZ_SECONDS=60]      replay tests/fuzz/regress, then fuzz each

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined \
                $(INCS) -Wall -Wextra -Werror
FUZZ_HDRS    := $(wildcard common/*/*.h worker/*.h)
FUZZ_BIN     := $(FUZZ_DIR)/fuzz_job $(FUZZ_DIR)/fuzz_response \
                $(FUZZ_DIR)/fuzz_ratelimit

$(FUZZ_DIR)/fuzz_job: tests/fuzz/fuzz_job.c common/shelf/json.c common/shelf/buf.c common/api/job.c \
        common/shelf/rfc3339.c \
        common/api/estimate.c $(FUZZ_HDRS)
$(FUZZ_DIR)/fuzz_response: tests/fuzz/fuzz_response.c common/shelf/json.c \
        common/api/ratelimit.c common/shelf/rfc3339.c common/api/outcome.c $(FUZZ_HDRS)
$(FUZZ_DIR)/fuzz_response: FUZZ_LIBS := -lcurl
$(FUZZ_DIR)/fuzz_ratelimit: tests/fuzz/fuzz_ratelimit.c common/api/ratelimit.c \
        common/shelf/rfc3339.c $(FUZZ_HDRS)

$(FUZZ_BIN):
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) $(FUZZ_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ_BIN)

.PHONY: fuzz fuzz-build
