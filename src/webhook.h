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

#include "lib/stringinfo.h"
#include "storage/latch.h"

#define WEBHOOK_VERSION "0.1"

/* settings (webhook.c) */
extern char *webhook_database_name;
extern int	webhook_max_in_flight;
extern int	webhook_batch_size;
extern int	webhook_max_response_bytes;
extern char *webhook_user_agent;
extern bool webhook_enabled;
extern char *webhook_deny_networks;
extern int	webhook_workers;

/* the most delivery workers webhook.workers may ask for */
#define WEBHOOK_MAX_WORKERS 32

/* true when loaded through shared_preload_libraries (webhook.c) */
extern bool webhook_preloaded;

/* shared memory (shmem.c) */
extern void webhook_shmem_request(void);
extern void webhook_shmem_startup(void);
extern void webhook_set_worker_latch(int index, Latch *latch);
extern void webhook_wake_worker(void);
extern void webhook_clear_wake_request(int index);
extern void webhook_wake_at_commit(void);
extern bool webhook_worker_running(void);

/* signing (signing.c) */
extern char *webhook_signature(const char *scheme, const char *secret,
							   const char *msg_id, int64 timestamp,
							   const char *body, size_t body_len);
extern char *webhook_random_secret(void);
extern bool webhook_standard_secret_valid(const char *secret);

/* the background worker (worker.c) */
extern PGDLLEXPORT void webhook_worker_main(Datum main_arg) pg_attribute_noreturn();

#endif							/* WEBHOOK_H */
