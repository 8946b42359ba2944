/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *	  How fast the worker starts the requests of each transport: a token
 *	  bucket at the transport's max_per_second, and a back-off when its
 *	  receiver answers 429 or does not answer in time.
 *
 * The state is the rate part of the transport's entry in the worker
 * (TransportRate, transport.c), reached from each request it holds.  It is
 * at rest until the transport's first request is claimed, and at rest
 * again once the transport has been idle (no claim, start or answer) for
 * IDLE_FORGET_SECS with its bucket full (ratelimit_rested()).
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
#include "transport.h"

/* back-off goes no lower than this many requests a second */
#define RATE_FLOOR 1.0
/* the bucket holds this many seconds' worth of tokens, at least one */
#define BURST_SECS 0.1
/* each 2xx in back-off raises the rate by this fraction, at least 1/s */
#define RECOVERY 0.1
/* a rate unused for this long is put to rest */
#define IDLE_FORGET_SECS 60

/*
 * The rate state of req's transport, set up (a full bucket at the limit req
 * read) if it is at rest, and marked used at now.
 */
static TransportRate *
rate_of_request(const Attempt *req, TimestampTz now)
{
	TransportRate *s = &req->transport->rate;
	double		limit = req->transport_max_per_second;

	if (s->refilled_at == 0)
	{
		memset(s, 0, sizeof(TransportRate));
		s->limit = limit;
		/* a full bucket, whatever the rate (a near-zero one would never fill it) */
		s->tokens = Max(1.0, limit * BURST_SECS);
		s->refilled_at = now;
		s->window_start = now;
	}
	s->last_used = now;
	return s;
}

/* The rate a transport may send at now, in requests a second; 0: any. */
static double
rate_of(const TransportRate *s)
{
	if (s->backoff > 0)
		return s->limit > 0 ? Min(s->backoff, s->limit) : s->backoff;
	return s->limit;
}

/*
 * Whether a transport's rate is at rest, put to rest if it has been idle
 * for IDLE_FORGET_SECS.  One whose bucket is not full yet is kept:
 * forgetting it would let its transport send again before its time.
 */
bool
ratelimit_rested(TransportRate *s, TimestampTz now)
{
	double		rate = rate_of(s);

	if (s->refilled_at == 0)
		return true;
	if (TimestampDifferenceExceeds(s->last_used, now, IDLE_FORGET_SECS * 1000) &&
		(rate <= 0 ||
		 s->tokens + rate * (now - s->refilled_at) / USECS_PER_SEC >= Max(1.0, rate * BURST_SECS)))
	{
		s->refilled_at = 0;
		return true;
	}
	return false;
}

/* Start a new one-second window of started requests when this one is over. */
static void
roll_window(TransportRate *s, TimestampTz now)
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
	rate_of_request(req, GetCurrentTimestamp())->limit = req->transport_max_per_second;
}

/*
 * May req start at now?  If so, it takes a token (none is needed without a
 * limit) and counts as started.  If not, *due is made no later than when
 * its transport's next token is (*due is 0 for "not yet set").
 */
bool
ratelimit_admit(const Attempt *req, TimestampTz now, TimestampTz *due)
{
	TransportRate *s = rate_of_request(req, now);
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
 * req, admitted (ratelimit_admit()), does not start after all: its token
 * goes back, and it counts as started no more.
 */
void
ratelimit_unadmit(const Attempt *req)
{
	TransportRate *s = &req->transport->rate;

	if (rate_of(s) > 0)
		s->tokens += 1.0;
	s->window_count--;
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
	HASH_SEQ_STATUS scan;
	Transport  *t;
	TimestampTz now = GetCurrentTimestamp();
	int			n = 0;
	int			room = 16;

	*ids = palloc(sizeof(Datum) * room);
	*limits = palloc(sizeof(Datum) * room);
	transport_scan_begin(&scan);
	while ((t = transport_scan_next(&scan)) != NULL)
	{
		TransportRate *s = &t->rate;
		double		rate = rate_of(s);
		double		tokens;

		if (s->refilled_at == 0 || rate <= 0)
			continue;
		tokens = s->tokens + rate * Max(0, now - s->refilled_at) / USECS_PER_SEC;
		if (tokens >= 1.0 - 1e-6 ||
			now + (1.0 - tokens) * USECS_PER_SEC / rate <= (double) horizon)
			continue;
		if (n == room)
		{
			room *= 2;
			*ids = repalloc(*ids, sizeof(Datum) * room);
			*limits = repalloc(*limits, sizeof(Datum) * room);
		}
		(*ids)[n] = Int64GetDatum(t->id);
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
	TransportRate *s;

	if (!too_many && (req->status < 200 || req->status > 299))
		return;
	now = GetCurrentTimestamp();
	s = rate_of_request(req, now);
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
