/*-------------------------------------------------------------------------
 *
 * lookup.h
 *	  The worker's name lookups, which it never waits for (lookup.c).
 *
 * IDENTIFICATION
 *	  src/lookup.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_LOOKUP_H
#define WEBHOOK_LOOKUP_H

#include "datatype/timestamp.h"

typedef enum LookupOutcome
{
	LOOKUP_PENDING,				/* being looked up: ask again when
								 * lookup_socket() is readable */
	LOOKUP_QUEUED,				/* not yet: the lookups its tenant (or the
								 * worker) may have are all under way; ask
								 * again as for LOOKUP_PENDING */
	LOOKUP_FOUND,				/* *addresses: the host's addresses */
	LOOKUP_FAILED				/* *error: why there are none */
} LookupOutcome;

extern int	lookup_socket(void);
extern void lookup_collect(void);
extern LookupOutcome lookup_host(const char *host, const char *tenant,
								 TimestampTz asked_at, const char **addresses,
								 const char **error);

#endif							/* WEBHOOK_LOOKUP_H */
