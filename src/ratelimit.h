/*-------------------------------------------------------------------------
 *
 * ratelimit.h
 *	  Per-transport request rates and back-off, in the worker (ratelimit.c).
 *
 * IDENTIFICATION
 *	  src/ratelimit.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_RATELIMIT_H
#define WEBHOOK_RATELIMIT_H

#include "attempt.h"
#include "transport.h"

extern void ratelimit_claimed(const Attempt *req);
extern bool ratelimit_admit(const Attempt *req, TimestampTz now, TimestampTz *due);
extern void ratelimit_unadmit(const Attempt *req);
extern void ratelimit_answered(const Attempt *req);
extern int	ratelimit_stalled(TimestampTz horizon, Datum **ids, Datum **limits);
extern bool ratelimit_rested(TransportRate *rate, TimestampTz now);

#endif							/* WEBHOOK_RATELIMIT_H */
