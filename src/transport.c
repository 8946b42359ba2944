/*-------------------------------------------------------------------------
 *
 * transport.c
 *	  What the worker knows of each transport it serves: one entry per
 *	  transport, in a hash table keyed by its id, in the worker's memory.
 *
 * A transport belongs to one worker (queue_set_partition), so its state is
 * this process's alone, and lost when the worker restarts.  An entry holds
 * every part of that state: what the worker holds of the transport
 * (worker.c), how fast it may send (TransportRate, ratelimit.c) and its
 * connection cache (TransportConnections, http.c), each part written only
 * by its file.  An entry is made when a request of the transport is
 * claimed, and every request the worker holds points to its transport's
 * entry (Attempt.transport), so nothing is looked up per request.
 *
 * Entries do not move (dynahash allocates them one by one), and one is
 * dropped only when the worker holds nothing of its transport, its rate
 * has rested (ratelimit_rested()) and its connections are closed
 * (http_close_idle()): transport_forget_idle(), every SWEEP_MS, asks each
 * part.  So the table holds only the transports that sent lately.
 *
 * IDENTIFICATION
 *	  src/transport.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "http.h"
#include "ratelimit.h"
#include "transport.h"
#include "utils/memutils.h"

/* how often idle transports are looked for */
#define SWEEP_MS 10000

static HTAB *transports = NULL;
static TimestampTz last_sweep = 0;

/* The table, made on first use. */
static HTAB *
transports_table(void)
{
	if (transports == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(Transport);
		ctl.hcxt = TopMemoryContext;
		transports = hash_create("webhook transports", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return transports;
}

/* The entry of transport id, made (every part at rest) if it is new. */
Transport *
transport_of(int64 id)
{
	Transport  *t;
	bool		found;

	t = hash_search(transports_table(), &id, HASH_ENTER, &found);
	if (!found)
		memset((char *) t + sizeof(t->id), 0, sizeof(Transport) - sizeof(t->id));
	return t;
}

/* Walk every entry: begin, then next until it returns NULL. */
void
transport_scan_begin(HASH_SEQ_STATUS *scan)
{
	hash_seq_init(scan, transports_table());
}

Transport *
transport_scan_next(HASH_SEQ_STATUS *scan)
{
	return hash_seq_search(scan);
}

/*
 * Every SWEEP_MS, let each transport's parts rest if they are idle, and
 * drop the entries of those that are all at rest and hold nothing.
 */
void
transport_forget_idle(TimestampTz now)
{
	HASH_SEQ_STATUS scan;
	Transport  *t;

	if (transports == NULL ||
		!TimestampDifferenceExceeds(last_sweep, now, SWEEP_MS))
		return;
	last_sweep = now;
	hash_seq_init(&scan, transports);
	while ((t = hash_seq_search(&scan)) != NULL)
	{
		bool		rested = ratelimit_rested(&t->rate, now);
		bool		closed = http_close_idle(&t->connections, now);

		/* removing the entry just returned is allowed during a scan */
		if (t->held == 0 && rested && closed)
			hash_search(transports, &t->id, HASH_REMOVE, NULL);
	}
}
