# Makefile for the webhook extension (PGXS)

EXTENSION = webhook
MODULE_big = webhook
OBJS = src/webhook.o src/shmem.o src/capture.o src/enqueue.o src/api.o src/signing.o src/address.o src/attempt.o src/attempt_log.o src/hook_counters.o src/direct.o src/render.o src/launcher.o src/pause.o \
	src/transform.o src/transport.o src/ratelimit.o src/housekeeping.o \
	src/http.o src/lookup.o src/queue.o src/log_claim.o src/claim_policy.o src/cursor.o src/order.o src/worker.o src/spi_util.o src/top_array.o

# Every SQL script, each built by sql/build-script: this version's install
# script (the catalog, src/sql/catalog, then the code, src/sql/code) and its
# upgrade script from the last release (the migration,
# src/sql/migrations/A--B.sql, then the same code); and, where the tree has
# its git history, every released version's scripts, rebuilt from its
# release commit (sql/releases), which test/e2e/test_upgrade.py installs and
# updates.
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" webhook.control)
DATA_built = $(shell sql/build-script --list)

# make installcheck runs them against a running server, as every contrib
# module's (PGHOST, PGPORT, PGUSER from the environment; a superuser): its
# postgresql.conf must have the lines of test/regress.conf (docs/testing.md's
# Tests section says why).  test/check starts a throwaway server with them
# and runs make installcheck against it.  Each test runs alone too
# (test/check REGRESS=deliveries): every file after setup opens with
# sql/include/alone.sql, which makes the extension if it is missing and
# numbers ids from 1001, and leaves the extension's tables as empty as it
# found them; setup comes first, cleanup last.
REGRESS = setup transport hook capture emit register signing deliveries access safety tenants policies limits neighbours cleanup
# pg_isolation_regress specs (specs/*.spec, expected/*.out; results in
# output_iso/): the races between the API's sessions and a writer's, on the
# same server after the suite, in a database of their own
# (isolation_regression); each spec makes the extension and drops it.
ISOLATION = grant_race delete_hook_race register_race rotate_race prune_slots log_slots

PG_CONFIG ?= pg_config
# the version is defined once, in webhook.control: the library reports it
# (User-Agent) and works with that catalog version only (worker.c)
PG_CPPFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	-DWEBHOOK_VERSION='"$(EXTVERSION)"'
SHLIB_LINK = -lcurl -lcrypto -pthread

# make CURL_SYMBOLS=1: libcurl linked in from its static library (Debian's
# libcurl.a, with the shared libraries that libcurl.so needs), so that perf
# names libcurl's own functions in a profile of the worker: where the
# requests' time inside curl goes (docs/performance.md).  A build to
# profile, never to run for use: no update of the system's libcurl would
# reach it.
ifeq ($(CURL_SYMBOLS),1)
CURL_LIBDIR := $(shell pkg-config --variable=libdir libcurl)
SHLIB_LINK = -Wl,--exclude-libs,ALL $(CURL_LIBDIR)/libcurl.a \
	$(shell objdump -p $(CURL_LIBDIR)/libcurl.so | awk '$$1 == "NEEDED" {print "-l:" $$2}') \
	-lcrypto -pthread
endif

# make WERROR=1: every warning is an error (CI: test/run-all when CI=true,
# .ci/run).  In CFLAGS, not CPPFLAGS: the bitcode that clang builds for the
# JIT is not held to gcc's warnings.
ifeq ($(WERROR),1)
PG_CFLAGS += -Werror
endif

# make SANITIZE=1: AddressSanitizer and UndefinedBehaviorSanitizer in the
# extension's own code (test/run-sanitized).  The postgres binary is not
# instrumented: a server loading this build needs gcc's libasan in LD_PRELOAD.
ifeq ($(SANITIZE),1)
SANITIZE_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
PG_CFLAGS += $(SANITIZE_FLAGS)
SHLIB_LINK += $(SANITIZE_FLAGS)
endif

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(DATA_built): sql/build-script sql/releases webhook.control $(wildcard src/sql/*/*.sql)
	sql/build-script $@ > $@

# every object depends on every header: they are few and small; and on
# webhook.control, whose version they are built with
$(OBJS): $(wildcard src/*.h) webhook.control
