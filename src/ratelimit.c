/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *	  How fast the worker starts the requests of each transport: a token
 *	  bucket at the transport's max_per_second, and a back-off when its
 *	  receiver answers 429 or does not answer in time.
 *
 * A transport belongs to one worker (queue_set_partition), so its state is
 * this process's alone: a hash table keyed by transport id, in the worker's
 * memory, lost when the worker restarts.  An entry is made when the
 * transport's deliveries are claimed, and dropped once the transport has
 * been idle (no claim, start or answer) for IDLE_FORGET_SECS, and its
 * bucket is full again: the table holds only the transports that sent
 * lately.
 *
 * The bucket holds up to a tenth of a second's worth of tokens, at least
 * one: that is the burst.  It fills at the transport's rate, and a request
 * starts only by taking a token; one that finds none stays held, waiting in
 * the worker (never dropped, never failed, not an attempt), and
 * ratelimit_admit() tells the worker when the next token is due, for its
 * wait to end then.  A request whose token is far off is not held that
 * long: the worker lets it go back to the queue, and its transport is
 * "stalled" until then (ratelimit_stalled()): the claim takes nothing of
 * it, so that what waits for tokens takes no room from other transports.
 *
 * Back-off: an answer 429, or a timeout, halves the transport's rate,
 * starting from the rate it was sending at (the requests it started in the
 * last second, at most max_per_second), down to RATE_FLOOR requests a
 * second (or max_per_second if lower); the bucket is emptied.  Each 2xx
 * answer then raises the rate by 10 %, at least by one request a second,
 * until it is back at max_per_second or, for a transport without a limit,
 * above the rate it was sending at when it first backed off: the back-off
 * is then over.  Answers to requests started before the last halving
 * neither halve the rate again nor raise it: they were sent at the old
 * rate, so a volley of 429s halves it once.
 *
 * A transport's limit is the one its latest claim read: update_transport()
 * applies from the next claim on, also to the requests already waiting.
 *
 * IDENTIFICATION
 *	  src/ratelimit.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include <math.h>

#include "ratelimit.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

/* back-off goes no lower than this many requests a second */
#define RATE_FLOOR 1.0
/* the bucket holds this many seconds' worth of tokens, at least one */
#define BURST_SECS 0.1
/* each 2xx in back-off raises the rate by this fraction, at least 1/s */
#define RECOVERY 0.1
/* an entry unused for this long is dropped */
#define IDLE_FORGET_SECS 60

/* What the worker knows of one transport's rate. */
typedef struct RateState
{
	int64		transport_id;	/* the hash key */
	double		limit;			/* its latest claim's max_per_second, or 0 */
	double		tokens;			/* in the bucket at refilled_at */
	TimestampTz refilled_at;
	double		backoff;		/* the backed-off rate; 0: not backing off */
	double		recover_to;		/* without a limit, back-off ends above this */
	TimestampTz backed_off_at;	/* the last halving */
	TimestampTz window_start;	/* requests started since then */
	int			window_count;
	int			previous_count; /* and in the second before */
	TimestampTz last_used;
} RateState;

static HTAB *states = NULL;
static TimestampTz last_sweep = 0;

/*
 * The state of a transport, made if needed with limit (the max_per_second
 * of a request of it), and marked used at now.
 */
static RateState *
state_of(int64 transport_id, double limit, TimestampTz now)
{
	RateState  *s;
	bool		found;

	if (states == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(RateState);
		ctl.hcxt = TopMemoryContext;
		states = hash_create("webhook transport rates", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	s = hash_search(states, &transport_id, HASH_ENTER, &found);
	if (!found)
	{
		s->limit = limit;
		/* a full bucket, whatever the rate (a near-zero one would never fill it) */
		s->tokens = Max(1.0, limit * BURST_SECS);
		s->refilled_at = now;
		s->backoff = 0;
		s->recover_to = 0;
		s->backed_off_at = 0;
		s->window_start = now;
		s->window_count = 0;
		s->previous_count = 0;
	}
	s->last_used = now;
	return s;
}

/* The rate a transport may send at now, in requests a second; 0: any. */
static double
rate_of(const RateState *s)
{
	if (s->backoff > 0)
		return s->limit > 0 ? Min(s->backoff, s->limit) : s->backoff;
	return s->limit;
}

/* Once in a while, drop the entries of transports idle for a while. */
static void
forget_idle(TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	RateState  *s;

	if (states == NULL ||
		!TimestampDifferenceExceeds(last_sweep, now, IDLE_FORGET_SECS * 1000))
		return;
	last_sweep = now;
	hash_seq_init(&seq, states);
	while ((s = hash_seq_search(&seq)) != NULL)
	{
		double		rate = rate_of(s);

		/*
		 * Removing the entry just returned is allowed during a scan.  One
		 * whose bucket is not full yet is kept: forgetting it would let its
		 * transport send again before its time.
		 */
		if (TimestampDifferenceExceeds(s->last_used, now, IDLE_FORGET_SECS * 1000) &&
			(rate <= 0 ||
			 s->tokens + rate * (now - s->refilled_at) / USECS_PER_SEC >= Max(1.0, rate * BURST_SECS)))
			hash_search(states, &s->transport_id, HASH_REMOVE, NULL);
	}
}

/* Start a new one-second window of started requests when this one is over. */
static void
roll_window(RateState *s, TimestampTz now)
{
	if (now - s->window_start < USECS_PER_SEC)
		return;
	s->previous_count = now - s->window_start < 2 * USECS_PER_SEC ? s->window_count : 0;
	s->window_start = now;
	s->window_count = 0;
}

/*
 * A request was claimed: its transport's limit is the one it read (the
 * transport's latest).
 */
void
ratelimit_claimed(const Attempt *req)
{
	TimestampTz now = GetCurrentTimestamp();

	forget_idle(now);
	state_of(req->transport_id, req->transport_max_per_second, now)->limit =
		req->transport_max_per_second;
}

/*
 * May req start at now?  If so, it takes a token (none is needed without a
 * limit) and counts as started.  If not, *due is made no later than when
 * its transport's next token is (*due is 0 for "not yet set").
 */
bool
ratelimit_admit(const Attempt *req, TimestampTz now, TimestampTz *due)
{
	RateState  *s = state_of(req->transport_id, req->transport_max_per_second, now);
	double		rate = rate_of(s);

	if (rate > 0)
	{
		if (now > s->refilled_at)
		{
			s->tokens = Min(Max(1.0, rate * BURST_SECS),
							s->tokens + rate * (now - s->refilled_at) / USECS_PER_SEC);
			s->refilled_at = now;
		}
		/* a millionth of a token short is rounding, not a reason to wait */
		if (s->tokens < 1.0 - 1e-6)
		{
			/* at most an hour ahead: a rate near zero must not overflow */
			TimestampTz t = now + (TimestampTz) Min(ceil((1.0 - s->tokens) * USECS_PER_SEC / rate),
													3600.0 * USECS_PER_SEC);

			if (*due == 0 || t < *due)
				*due = t;
			return false;
		}
		s->tokens -= 1.0;
	}
	roll_window(s, now);
	s->window_count++;
	return true;
}

/*
 * The transports whose next token is due later than horizon, with the
 * limit each was read with, into ids and limits (made in the current
 * memory context): the worker holds none of their requests meanwhile, and
 * the claim takes none (queue.c).  Returns how many.
 */
int
ratelimit_stalled(TimestampTz horizon, Datum **ids, Datum **limits)
{
	HASH_SEQ_STATUS seq;
	RateState  *s;
	TimestampTz now = GetCurrentTimestamp();
	int			n = 0;

	*ids = palloc(sizeof(Datum) * Max(1, states ? hash_get_num_entries(states) : 0));
	*limits = palloc(sizeof(Datum) * Max(1, states ? hash_get_num_entries(states) : 0));
	if (states == NULL)
		return 0;
	hash_seq_init(&seq, states);
	while ((s = hash_seq_search(&seq)) != NULL)
	{
		double		rate = rate_of(s);
		double		tokens;

		if (rate <= 0)
			continue;
		tokens = s->tokens + rate * Max(0, now - s->refilled_at) / USECS_PER_SEC;
		if (tokens >= 1.0 - 1e-6 ||
			now + (1.0 - tokens) * USECS_PER_SEC / rate <= (double) horizon)
			continue;
		(*ids)[n] = Int64GetDatum(s->transport_id);
		(*limits)[n] = Float8GetDatum(s->limit);
		n++;
	}
	return n;
}

/*
 * req was answered, or failed: a 429 or a timeout backs its transport off,
 * a 2xx helps it recover (see the top of the file).
 */
void
ratelimit_answered(const Attempt *req)
{
	bool		too_many = req->status == 429 || req->timed_out;
	TimestampTz now;
	RateState  *s;

	if (!too_many && (req->status < 200 || req->status > 299))
		return;
	now = GetCurrentTimestamp();
	s = state_of(req->transport_id, req->transport_max_per_second, now);
	if (req->started_at < s->backed_off_at)
		return;
	if (too_many)
	{
		double		from;
		double		lowest = s->limit > 0 ? Min(RATE_FLOOR, s->limit) : RATE_FLOOR;

		if (s->backoff > 0)
			from = rate_of(s);
		else
		{
			roll_window(s, now);
			from = Max(s->previous_count, s->window_count);
			if (s->limit > 0)
				from = Min(from, s->limit);
			s->recover_to = from;
		}
		s->backoff = Max(lowest, from / 2);
		s->backed_off_at = now;
		s->tokens = 0;
		s->refilled_at = now;
	}
	else if (s->backoff > 0)
	{
		s->backoff += Max(1.0, s->backoff * RECOVERY);
		if (s->backoff >= (s->limit > 0 ? s->limit : s->recover_to))
			s->backoff = 0;
	}
}
