# Makefile for the webhook extension (PGXS)

EXTENSION = webhook
MODULE_big = webhook
OBJS = src/webhook.o src/shmem.o src/capture.o src/api.o src/signing.o src/address.o src/attempt.o src/launcher.o \
	src/transform.o src/ratelimit.o src/housekeeping.o \
	src/http.o src/queue.o src/worker.o

# The install script of the current version is assembled from the parts
# under src/sql, in name order.  Released versions' install scripts are kept
# as they were released, with the upgrade scripts from each to the next:
# every catalog change after 0.1 ships in the next version's upgrade script
# too (test/e2e/test_upgrade.py checks that an updated catalog is the same as
# a fresh one).
DATA_built = sql/webhook--0.2.sql
DATA = sql/webhook--0.1.sql sql/webhook--0.1--0.2.sql

REGRESS = setup transport hook capture emit register signing deliveries access safety tenants policies cleanup
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf --temp-instance=./tmp_check

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK = -lcurl -lcrypto

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

sql/webhook--0.2.sql: $(sort $(wildcard src/sql/*.sql))
	cat $^ > $@

# every object depends on every header: they are few and small
$(OBJS): $(wildcard src/*.h)
