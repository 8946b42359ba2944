/*-------------------------------------------------------------------------
 *
 * lookup.c
 *	  The worker's name lookups, which it never waits for.
 *
 * libcurl looks a host name up in a thread of its own, and ends a request
 * whose lookup has not returned (its timeout passed, or the worker ended
 * it) only once that thread has: a tenant whose name server never answers
 * stopped the whole worker for the resolver's timeout at each of its
 * requests (test_lookup).  So the worker looks the names of its requests
 * up itself, each lookup in a thread of its own, and hands curl the
 * addresses (http.c): a request waits for its name without curl, and one
 * whose lookup outlasts its timeout fails alone, the lookup left to end
 * in its thread.
 *
 * One entry per host name, in a hash table in the worker's memory: its
 * last lookup's outcome and when it came, and whether another is under
 * way.  A host has one lookup at a time, whatever the number of its
 * requests: those that ask meanwhile wait for the same one.  Addresses
 * are kept FOUND_TTL_MS (curl's own cache keeps them a minute); past that,
 * a request uses them still and starts a lookup for the next ones (or,
 * while its tenant's lookups are all under way, until one can start), so a
 * busy host does not wait for it.  A failure is not kept: the next request
 * asks again, and waits for that lookup (as curl's requests did).
 *
 * A tenant has LOOKUPS_PER_TENANT lookups under way at the most: its
 * other names wait for one of them to end, and its name server, however
 * slow, never keeps another tenant's names waiting (glibc's own
 * getaddrinfo_a() would: its twenty threads serve one queue).  The worker
 * has LOOKUPS_AT_ONCE threads at the most, whatever the number of
 * tenants (each thread counts against the limits on the server's
 * processes, which its forks need): only 32 tenants' name servers, all
 * silent, would make another's names wait.
 *
 * The thread runs getaddrinfo() and nothing else (no PostgreSQL code is
 * thread-safe), with every signal blocked, and then writes its entry's
 * address to a pipe: the worker waits on the pipe with curl's sockets
 * (lookup_socket()) and reads the outcomes from it (lookup_collect()).
 * The entry is the thread's to write until then, and stays put (dynahash
 * entries do not move; a pending one is never removed).
 *
 * IDENTIFICATION
 *	  src/lookup.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "lib/ilist.h"
#include "lib/stringinfo.h"
#include "lookup.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* addresses found are used for this long without a new lookup */
#define FOUND_TTL_MS (60 * 1000)

/* the longest host name (RFC 1035: 253 characters) and its NUL */
#define HOST_KEY_LEN 256

/* lookups under way for one tenant, and in all, at the most */
#define LOOKUPS_PER_TENANT 2
#define LOOKUPS_AT_ONCE 64

/*
 * the addresses of a name given to curl, at the most: the first ones (a
 * tenant's name server could answer with thousands, each then compared
 * with the others, and parsed by curl at each request)
 */
#define MAX_ADDRESSES 16

/* a lookup thread's stack: getaddrinfo() needs a few pages of it */
#define LOOKUP_STACK_BYTES (256 * 1024)

typedef struct HostLookup
{
	char		host[HOST_KEY_LEN]; /* the hash key */
	bool		pending;		/* a lookup under way, in its thread */
	char	   *pending_tenant; /* whose request started it */
	dlist_node	pending_node;	/* in pending_lookups, while pending */
	/* written by the lookup's thread, read once it said so */
	int			rc;				/* getaddrinfo()'s */
	struct addrinfo *found;
	LookupOutcome outcome;		/* of the last lookup; LOOKUP_PENDING: none
								 * yet */
	char	   *addresses;		/* FOUND: "a,b,[c]", in TopMemoryContext */
	char	   *error;			/* FAILED: why, in TopMemoryContext */
	TimestampTz outcome_at;		/* when the last lookup ended */
	TimestampTz asked_at;		/* when a request last asked */
} HostLookup;

static HTAB *hosts = NULL;
static dlist_head pending_lookups = DLIST_STATIC_INIT(pending_lookups);
static long n_hosts_swept = 0;	/* entries after the last sweep */

/*
 * The pipe: each lookup's thread writes its entry's address (a write of
 * fewer than PIPE_BUF bytes is never split; the thread waits while the
 * pipe is full), the worker reads them without waiting.
 */
static int	done_pipe[2] = {-1, -1};

static const struct addrinfo lookup_hints = {
	.ai_family = AF_UNSPEC,
	.ai_socktype = SOCK_STREAM,
	.ai_protocol = IPPROTO_TCP,
};

/* A lookup's thread: getaddrinfo(), then say it ended. */
static void *
lookup_thread(void *arg)
{
	HostLookup *e = (HostLookup *) arg;
	ssize_t		written pg_attribute_unused();

	e->rc = getaddrinfo(e->host, NULL, &lookup_hints, &e->found);
	written = write(done_pipe[1], &e, sizeof(e));
	return NULL;
}

/*
 * The pipe's reading end, for the worker's wait set, made on first call.
 */
int
lookup_socket(void)
{
	if (done_pipe[0] < 0)
	{
		if (pipe2(done_pipe, O_CLOEXEC) != 0 ||
			fcntl(done_pipe[0], F_SETFL, O_NONBLOCK) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create a pipe for name lookups: %m")));
	}
	return done_pipe[0];
}

/* The table, made on first use. */
static HTAB *
hosts_table(void)
{
	if (hosts == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = HOST_KEY_LEN;
		ctl.entrysize = sizeof(HostLookup);
		ctl.hcxt = TopMemoryContext;
		hosts = hash_create("webhook host lookups", 64, &ctl,
							HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	return hosts;
}

/*
 * Forget the hosts no request asked for since FOUND_TTL_MS, and none being
 * looked up (glibc reads their entries): whenever the table has doubled
 * since the last sweep, so that a tenant's thousand names go once unused.
 */
static void
forget_unused(TimestampTz now)
{
	HASH_SEQ_STATUS scan;
	HostLookup *e;

	if (hosts == NULL || hash_get_num_entries(hosts) <= 2 * n_hosts_swept + 64)
		return;
	hash_seq_init(&scan, hosts);
	while ((e = hash_seq_search(&scan)) != NULL)
	{
		if (e->pending ||
			!TimestampDifferenceExceeds(e->asked_at, now, FOUND_TTL_MS))
			continue;
		if (e->addresses)
			pfree(e->addresses);
		if (e->error)
			pfree(e->error);
		hash_search(hosts, e->host, HASH_REMOVE, NULL);
	}
	n_hosts_swept = hash_get_num_entries(hosts);
}

/* The error of a name that did not resolve: curl's words for it, and why. */
static char *
could_not_resolve(const char *host, const char *why)
{
	return why ? psprintf("Could not resolve host: %s (%s)", host, why)
		: psprintf("Could not resolve host: %s", host);
}

/* A lookup ended: keep its outcome (found addresses, or an error). */
static void
set_outcome(HostLookup *e, LookupOutcome outcome, const char *text, TimestampTz now)
{
	char	  **keep = outcome == LOOKUP_FOUND ? &e->addresses : &e->error;

	if (*keep)
		pfree(*keep);
	*keep = MemoryContextStrdup(TopMemoryContext, text);
	e->outcome = outcome;
	e->outcome_at = now;
}

/*
 * The addresses of a finished lookup, as curl takes them: "a,b,[c]", in
 * getaddrinfo()'s order (each once, MAX_ADDRESSES at the most), or NULL
 * when it found none.
 */
static char *
addresses_text(const struct addrinfo *found)
{
	StringInfoData text;		/* ",a,b,": each address between commas */
	const struct addrinfo *ai;
	char	   *result = NULL;
	int			n = 0;

	initStringInfo(&text);
	appendStringInfoChar(&text, ',');
	for (ai = found; ai != NULL && n < MAX_ADDRESSES; ai = ai->ai_next)
	{
		char		address[INET6_ADDRSTRLEN];
		char		item[INET6_ADDRSTRLEN + 4];
		const void *raw;

		if (ai->ai_family == AF_INET)
			raw = &((const struct sockaddr_in *) ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6)
			raw = &((const struct sockaddr_in6 *) ai->ai_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(ai->ai_family, raw, address, sizeof(address)) == NULL)
			continue;
		if (ai->ai_family == AF_INET6)
			snprintf(item, sizeof(item), ",[%s],", address);
		else
			snprintf(item, sizeof(item), ",%s,", address);
		/* (a few addresses: a search finds one seen already) */
		if (strstr(text.data, item) == NULL)
		{
			appendStringInfoString(&text, item + 1);
			n++;
		}
	}
	if (text.len > 1)
		result = pnstrdup(text.data + 1, text.len - 2);
	pfree(text.data);
	return result;
}

/* A lookup's thread ended: its outcome, and it is no longer pending. */
static void
lookup_ended(HostLookup *e, TimestampTz now)
{
	char	   *found = NULL;
	char	   *error;

	if (e->rc == 0)
	{
		found = addresses_text(e->found);
		freeaddrinfo(e->found);
		e->found = NULL;
	}
	if (found != NULL)
	{
		set_outcome(e, LOOKUP_FOUND, found, now);
		pfree(found);
	}
	else
	{
		error = could_not_resolve(e->host, NULL);
		set_outcome(e, LOOKUP_FAILED, error, now);
		pfree(error);
	}
	e->pending = false;
	pfree(e->pending_tenant);
	e->pending_tenant = NULL;
	dlist_delete(&e->pending_node);
}

/* Take in every lookup that ended: the entries the pipe names. */
void
lookup_collect(void)
{
	HostLookup *ended[64];
	ssize_t		got;
	TimestampTz now = GetCurrentTimestamp();

	while ((got = read(done_pipe[0], ended, sizeof(ended))) > 0)
	{
		int			i;

		/* (the threads write whole pointers, so whole pointers are read) */
		Assert(got % sizeof(HostLookup *) == 0);
		for (i = 0; i < got / (ssize_t) sizeof(HostLookup *); i++)
			lookup_ended(ended[i], now);
	}
}

/*
 * Whether tenant may start another lookup: it has fewer than
 * LOOKUPS_PER_TENANT under way, and the worker fewer than LOOKUPS_AT_ONCE.
 */
static bool
lookup_room(const char *tenant)
{
	dlist_iter	iter;
	int			n_tenant = 0;
	int			n = 0;

	dlist_foreach(iter, &pending_lookups)
	{
		HostLookup *e = dlist_container(HostLookup, pending_node, iter.cur);

		n++;
		if (strcmp(e->pending_tenant, tenant) == 0)
			n_tenant++;
	}
	return n_tenant < LOOKUPS_PER_TENANT && n < LOOKUPS_AT_ONCE;
}

/*
 * Start looking host up in a thread of its own, for a request of tenant,
 * if there is room for another lookup (else its request waits); one that
 * cannot start has failed.
 */
static void
start_lookup(HostLookup *e, const char *tenant, TimestampTz now)
{
	pthread_attr_t attr;
	pthread_t	thread;
	sigset_t	all;
	sigset_t	old;
	int			rc;

	if (!lookup_room(tenant))
		return;
	(void) lookup_socket();
	e->found = NULL;
	e->rc = 0;
	e->pending_tenant = MemoryContextStrdup(TopMemoryContext, tenant);
	/* the thread inherits the mask: no signal of the worker's runs there */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, LOOKUP_STACK_BYTES);
	rc = pthread_create(&thread, &attr, lookup_thread, e);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
	{
		char	   *error = could_not_resolve(e->host,
											  psprintf("no thread to look it up: %s",
													   strerror(rc)));

		pfree(e->pending_tenant);
		e->pending_tenant = NULL;
		set_outcome(e, LOOKUP_FAILED, error, now);
		pfree(error);
		return;
	}
	e->pending = true;
	dlist_push_tail(&pending_lookups, &e->pending_node);
}

/*
 * The addresses of host for a request of tenant that asked for them at
 * asked_at: LOOKUP_FOUND with *addresses, LOOKUP_FAILED with *error (the
 * outcome of a lookup that ended after asked_at), or LOOKUP_PENDING (being
 * looked up) or LOOKUP_QUEUED (not yet: no room for its lookup): the
 * request is to ask again after lookup_collect().  Addresses found within
 * FOUND_TTL_MS are used at once; older ones too, while the next lookup is
 * under way.  The texts are valid until the next call here or to
 * lookup_collect().
 */
LookupOutcome
lookup_host(const char *host, const char *tenant, TimestampTz asked_at,
			const char **addresses, const char **error)
{
	TimestampTz now = GetCurrentTimestamp();
	HostLookup *e;
	bool		found;

	if (strlen(host) >= HOST_KEY_LEN)
	{
		*error = could_not_resolve(host, "a name too long");
		return LOOKUP_FAILED;
	}
	forget_unused(now);
	e = hash_search(hosts_table(), host, HASH_ENTER, &found);
	if (!found)
	{
		e->pending = false;
		e->pending_tenant = NULL;
		e->outcome = LOOKUP_PENDING;
		e->addresses = e->error = NULL;
		e->outcome_at = 0;
	}
	e->asked_at = now;

	/* the outcome of a lookup that ended since the request asked */
	if (e->outcome != LOOKUP_PENDING && e->outcome_at >= asked_at)
	{
		*addresses = e->addresses;
		*error = e->error;
		return e->outcome;
	}
	if (!e->pending &&
		(e->outcome != LOOKUP_FOUND ||
		 TimestampDifferenceExceeds(e->outcome_at, now, FOUND_TTL_MS)))
		start_lookup(e, tenant, now);
	if (e->outcome == LOOKUP_FOUND)
	{
		*addresses = e->addresses;
		return LOOKUP_FOUND;
	}
	/* (a lookup that could not even start has failed by now) */
	if (!e->pending && e->outcome == LOOKUP_FAILED && e->outcome_at >= asked_at)
	{
		*error = e->error;
		return LOOKUP_FAILED;
	}
	return e->pending ? LOOKUP_PENDING : LOOKUP_QUEUED;
}
