# Makefile for the webhook extension (PGXS)

EXTENSION = webhook
MODULE_big = webhook
OBJS = src/webhook.o src/shmem.o src/capture.o src/enqueue.o src/api.o src/signing.o src/address.o src/attempt.o src/launcher.o src/pause.o \
	src/transform.o src/ratelimit.o src/housekeeping.o \
	src/http.o src/queue.o src/worker.o src/spi_util.o

# The install script of the current version is assembled from the parts
# under src/sql, in name order.  A released version's install script is
# assembled the same way from its release commit (sql/releases,
# sql/release-script), where the tree has its git history; 0.1's is kept as
# it was released.  Every catalog change ships in the next version's upgrade
# script too (test/e2e/test_upgrade.py updates every released version and
# checks that the result is the catalog a fresh install makes).
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" webhook.control)
RELEASED = $(shell sed -n 's/^\([0-9.]*\) [0-9a-f]*$$/\1/p' sql/releases)
RELEASED_SCRIPTS = $(if $(shell git rev-parse --git-dir 2>/dev/null),\
	$(foreach v,$(RELEASED),sql/webhook--$(v).sql))
DATA_built = sql/webhook--$(EXTVERSION).sql $(RELEASED_SCRIPTS)
DATA = sql/webhook--0.1.sql $(wildcard sql/webhook--*--*.sql)

# make installcheck runs them against a running server, as every contrib
# module's (PGHOST, PGPORT, PGUSER from the environment; a superuser): its
# postgresql.conf must have the lines of test/regress.conf (docs/testing.md's
# Tests section says why).  test/check starts a throwaway server with them
# and runs make installcheck against it.  Each test runs alone too
# (test/check REGRESS=deliveries): every file after setup opens by making the
# extension if it is missing and numbering ids from 1001, and leaves the
# extension's tables as empty as it found them; setup comes first, cleanup
# last.
REGRESS = setup transport hook capture emit register signing deliveries access safety tenants policies limits neighbours cleanup
# pg_isolation_regress specs (specs/*.spec, expected/*.out; results in
# output_iso/): the races between the API's sessions and a writer's, on the
# same server after the suite, in a database of their own
# (isolation_regression); each spec makes the extension and drops it.
ISOLATION = grant_race delete_hook_race register_race rotate_race

PG_CONFIG ?= pg_config
# the version is defined once, in webhook.control: the library reports it
# (User-Agent) and works with that catalog version only (worker.c)
PG_CPPFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	-DWEBHOOK_VERSION='"$(EXTVERSION)"'
SHLIB_LINK = -lcurl -lcrypto

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

sql/webhook--$(EXTVERSION).sql: $(sort $(wildcard src/sql/*.sql))
	cat $^ > $@

$(RELEASED_SCRIPTS): sql/webhook--%.sql: sql/releases
	sql/release-script $* > $@

# every object depends on every header: they are few and small; and on
# webhook.control, whose version they are built with
$(OBJS): $(wildcard src/*.h) webhook.control
