/*-------------------------------------------------------------------------
 *
 * transport.h
 *	  What the worker knows of each transport it serves, in one structure
 *	  (transport.c): what it holds of it, how fast it may send (ratelimit.c),
 *	  and its connections (http.c).
 *
 * IDENTIFICATION
 *	  src/transport.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_TRANSPORT_H
#define WEBHOOK_TRANSPORT_H

#include "utils/hsearch.h"
#include "utils/timestamp.h"

/* How fast the transport may send: ratelimit.c's alone. */
typedef struct TransportRate
{
	double		limit;			/* its latest claim's max_per_second, or 0 */
	double		tokens;			/* in the bucket at refilled_at */
	TimestampTz refilled_at;
	double		backoff;		/* the backed-off rate; 0: not backing off */
	double		recover_to;		/* without a limit, back-off ends above this */
	TimestampTz backed_off_at;	/* the last halving */
	TimestampTz window_start;	/* requests started since then */
	int			window_count;
	int			previous_count; /* and in the second before */
	TimestampTz last_used;		/* claimed, started or answered */
} TransportRate;

/* Its connection and TLS session cache: http.c's alone. */
typedef struct TransportConnections
{
	void	   *share;			/* a curl share handle; NULL: none open */
	int			in_use;			/* requests in flight with it */
	TimestampTz last_used;
	uint64		deny_generation;	/* of the deny list its connections obey */
} TransportConnections;

typedef struct Transport
{
	int64		id;				/* the hash key: webhook.transport's id */
	int			held;			/* requests claimed and not yet recorded */
	int			in_flight;		/* of which started and not finished */
	TransportRate rate;
	TransportConnections connections;
} Transport;

extern Transport *transport_of(int64 id);
extern void transport_scan_begin(HASH_SEQ_STATUS *scan);
extern Transport *transport_scan_next(HASH_SEQ_STATUS *scan);
extern void transport_forget_idle(TimestampTz now);

#endif							/* WEBHOOK_TRANSPORT_H */
