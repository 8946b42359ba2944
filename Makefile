# Makefile for the webhook extension (PGXS)

EXTENSION = webhook
MODULE_big = webhook
OBJS = src/webhook.o src/shmem.o src/capture.o src/api.o src/signing.o src/address.o src/attempt.o src/launcher.o \
	src/transform.o src/ratelimit.o \
	src/http.o src/queue.o src/worker.o

# The install script is assembled from the parts under src/sql, in name order.
DATA_built = sql/webhook--0.1.sql

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

sql/webhook--0.1.sql: $(sort $(wildcard src/sql/*.sql))
	cat $^ > $@

# every object depends on every header: they are few and small
$(OBJS): $(wildcard src/*.h)
