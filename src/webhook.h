/*-------------------------------------------------------------------------
 *
 * webhook.h
 *	  Declarations shared by the files of the webhook extension.
 *
 * Vocabulary used throughout: an *event* is something that happened, once
 * (webhook.event); a *delivery* is one event for one hook (webhook.delivery,
 * the queue); an *attempt* is one HTTP request of a delivery
 * (webhook.attempt).  A *transport* is a tenant's HTTP destination and a
 * *hook* a subscription on it.
 *
 * IDENTIFICATION
 *	  src/webhook.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_H
#define WEBHOOK_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "storage/latch.h"

/*
 * The library's version, which is also the catalog version it works with:
 * the worker waits while the database's extension is another one (until
 * ALTER EXTENSION webhook UPDATE).  The Makefile sets it from
 * webhook.control's default_version.
 */
#ifndef WEBHOOK_VERSION
#error "WEBHOOK_VERSION must be defined (the Makefile takes it from webhook.control)"
#endif

/* settings (webhook.c) */
extern char *webhook_database_name;
extern int	webhook_max_in_flight;
extern int	webhook_batch_size;
extern int	webhook_max_response_bytes;
extern int	webhook_max_body_bytes;
extern char *webhook_user_agent;
extern bool webhook_enabled;
extern char *webhook_deny_networks;
extern int	webhook_workers;
extern bool webhook_auto_prune;
extern bool webhook_debug_sql_claims;
extern Interval webhook_retention_span;
extern Interval webhook_disable_after_span;

/* the most delivery workers webhook.workers may ask for, per database */
#define WEBHOOK_MAX_WORKERS 32
/* the most delivery workers running at once, all databases together */
#define WEBHOOK_MAX_SLOTS 128
/* hooks with new deliveries a worker is told of, before it looks at all */
#define WEBHOOK_MAX_NEWS 256
/* databases the launcher is asked to probe, before it probes them all */
#define WEBHOOK_MAX_PROBE_REQUESTS 64

/*
 * SQL: the event e has been read by the cursor c, a row of
 * webhook_internal.cursor (src/sql/catalog/20_tables.sql says how).
 */
#define LOG_READ_BY(e, c) \
"(pg_catalog.pg_visible_in_snapshot(" e ".txid, " c ".lo)" \
" OR (pg_catalog.pg_visible_in_snapshot(" e ".txid, " c ".hi)" \
"     AND (" e ".txid, " e ".id) OPERATOR(pg_catalog.<=) (" c ".last_txid, " c ".last_id)))"

/*
 * A delivery's resource_key: its event's resource_id, this many characters
 * of it (src/sql/catalog/20_tables.sql says why), as the SQL function
 * webhook_internal.resource_key() cuts it, and the claim's SQL, which does
 * not call it (src/queue.c, GROUP_KEY).
 */
#define RESOURCE_KEY_CHARS 200

/*
 * SQL: the delivery d is an inactive hook's and was never tried: what an
 * inactive ordered hook missed (an unordered one's missed events are in
 * the log, for its cursor), which goes as the log does, at
 * webhook.retention.
 */
#define INACTIVE_MISSED(d) \
"(" d ".state = 'pending' AND " d ".attempts = 0" \
" AND EXISTS (SELECT FROM webhook.hook h WHERE h.id = " d ".hook_id AND NOT h.active))"

/* true when loaded through shared_preload_libraries (webhook.c) */
extern bool webhook_preloaded;

/* what a running worker last published (webhook_workers_of) */
typedef struct WebhookWorkerInfo
{
	int			index;			/* its number among the database's workers,
								 * from 0 */
	int			pid;
	int			in_flight;		/* requests on the wire */
	int			held;			/* claimed and not yet recorded */
	int64		config_generation;	/* configuration reloads it has taken */
} WebhookWorkerInfo;

/* shared memory (shmem.c) */
extern void webhook_shmem_request(void);
extern void webhook_shmem_startup(void);
extern int	webhook_slot_acquire(Oid dboid, int index, bool *paused);
extern void webhook_slot_release(int slot);
extern void webhook_clear_wake_request(int slot);
extern void webhook_wake_worker(const int64 *ids, int n, bool unknown);
extern bool webhook_take_news(int slot, int64 *ids, int *n);
extern void webhook_wake_at_commit_for(const Datum *hook_ids, int n, bool made);
extern int	webhook_workers_running(Oid dboid);
extern void webhook_slot_report(int slot, int in_flight, int held);
extern void webhook_slot_config_loaded(int slot);
extern int	webhook_workers_of(Oid dboid, WebhookWorkerInfo *workers, int max);
extern int	webhook_pause_take(Oid dboid, int *stopped);
extern void webhook_pause_release(int pause);
extern void webhook_pause_release_all(void);
extern bool webhook_database_paused(Oid dboid);
extern bool webhook_probe_begin(Oid dboid);
extern void webhook_probe_answer(Oid dboid);
extern bool webhook_probe_end(Oid dboid);
extern void webhook_probes_forget(void);
extern void webhook_set_launcher_latch(Latch *latch);
extern void webhook_wake_launcher(void);
extern int	webhook_take_probe_requests(Oid *dboids);
extern void webhook_wake_at_commit(void);
extern void webhook_probe_at_commit(Oid dboid);

/* the launcher (launcher.c) */
extern PGDLLEXPORT void webhook_launcher_main(Datum main_arg) pg_attribute_noreturn();
extern bool webhook_database_wanted(const char *datname);

/* capture (capture.c) */
extern Oid	webhook_function_owner(Oid fn_oid);

/* who the backend acted as before webhook_become() (capture.c) */
typedef struct WebhookSavedUser
{
	Oid			userid;
	int			sec_context;
} WebhookSavedUser;

extern void webhook_become(Oid role, bool restricted, WebhookSavedUser *saved);
extern void webhook_restore_user(const WebhookSavedUser *saved);

/* signing (signing.c) */
extern char *webhook_signature(const char *scheme, const char *secret,
							   const char *msg_id, int64 timestamp,
							   const char *body, size_t body_len);
extern char *webhook_random_secret(void);
extern bool webhook_standard_secret_valid(const char *secret);

/* the background worker (worker.c) */
extern PGDLLEXPORT void webhook_worker_main(Datum main_arg) pg_attribute_noreturn();

#endif							/* WEBHOOK_H */
