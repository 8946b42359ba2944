/*-------------------------------------------------------------------------
 *
 * http.c
 *	  Sending requests concurrently with libcurl's multi interface, waiting
 *	  on curl's sockets and the worker's latch in one WaitEventSet.
 *
 * curl tells us, through its socket callback, which sockets to watch for
 * what, and through its timer callback when it next needs to be called.  We
 * keep a WaitEventSet holding the latch, postmaster death and those sockets;
 * a kept-alive connection stays in it between its requests, so that it is
 * rebuilt only when a connection opens or closes, and modified in place
 * when only the direction changes.  So a wake-up, SIGTERM or SIGHUP
 * interrupts a wait on slow receivers at once, and nothing here ever blocks
 * on one request.
 *
 * Connections are kept alive and reused, but only within one transport:
 * each transport has its own connection cache (a curl share handle, in
 * the connections part of its entry, transport.c), since curl would
 * otherwise hand one transport's connection, with its client certificate
 * and credentials, to another transport of the same host.  A cache made
 * before webhook.deny_networks last changed is not used again: its
 * connections were checked against the old list (address.c).
 *
 * No catalog access and no transaction here: attempts come in filled
 * (queue.c), their headers are composed by attempt.c, and they go out with
 * their outcome on the caller's "done" list.  Each attempt in flight has a
 * transfer: its curl handle and header list, which are this file's alone,
 * and its URL, parsed once for every request to it (transfer_url()).
 *
 * This file is the extension's only boundary with libcurl (but for
 * curl_global_init in _PG_init).  Every libcurl call that returns a code
 * goes through one of the checks below, so that one place decides how a
 * curl failure becomes an error.  The request policy (request_policy():
 * http and https only, no redirects, no proxy, the address policy of
 * address.c at every connection, the transport's TLS settings; and
 * request_target(): its timeouts) is defined once and applied both to the
 * worker's requests and to register()'s HEAD check (http_head()).
 *
 * IDENTIFICATION
 *	  src/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include <curl/curl.h>

#include <arpa/inet.h>

#include "address.h"
#include "attempt.h"
#include "common/hashfn.h"
#include "http.h"
#include "lookup.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "pgstat.h"
#include "top_array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define HTTP_MAX_HEADER_BYTES 8192

/* Retry-After beyond this is taken as this: 30 days, the longest step */
#define RETRY_AFTER_MAX_S (30.0 * 86400)

/*
 * An attempt in flight: what curl needs of it, in the attempt's context.
 * One whose host has a name is first looked up (lookup.c), in looking_up,
 * and given to curl with the addresses found (CURLOPT_RESOLVE,
 * "+host:port:addresses"), so that curl never looks a name up itself.
 */
typedef struct HttpTransfer
{
	Attempt    *attempt;
	struct EasyHandle *handle;	/* its curl handle */
	CURL	   *easy;			/* handle->easy */
	struct ParsedUrl *url;		/* its URL, parsed (transfer_url()), or NULL */
	struct curl_slist *header_list;	/* in the attempt's context */
	TimestampTz lookup_deadline;	/* its timeouts, from its start */
	long		waited_ms;		/* for its host's addresses */
	dlist_node	lookup_node;	/* in looking_up, until found */
	bool		in_multi;		/* given to curl */
	struct curl_slist resolve;	/* CURLOPT_RESOLVE: "host:port:addresses" */
	char		errbuf[CURL_ERROR_SIZE];
	char		denied[ADDRESS_REFUSAL_LEN];	/* why the address policy refused */
} HttpTransfer;

/*
 * A URL as parse_url() parsed it, for every request to it (a hook's): curl
 * copies the parsed URL it is given (CURLOPT_CURLU) into each transfer
 * that uses it, at the transfer's start and at each retry of it, and only
 * reads it.  Kept in parsed_urls, and by each transfer that uses it (refs),
 * in TopMemoryContext.
 */
typedef struct ParsedUrl
{
	char	   *text;			/* the URL, as the attempt has it */
	CURLU	   *curlu;			/* as curl parsed it, or NULL: curl could not */
	char	   *host;			/* a name to look up first, or NULL (curl's) */
	char	   *port;			/* its port (curl's), or NULL */
	bool		address_host;	/* its host is an address, not a name */
	int			refs;			/* transfers that use it, and 1 while kept */
} ParsedUrl;

/* parsed_urls: the URLs parsed, by a hash of their text */
typedef struct ParsedUrlEntry
{
	uint64		hash;			/* hash key */
	ParsedUrl  *url;
} ParsedUrlEntry;

/*
 * The URLs kept parsed: all are forgotten when there are more than this
 * many, or their texts take more than this many bytes (a URL may have some
 * 6 kB, and curl's parse of it about as much again: a tenant's long ones
 * must not take the worker's memory).  A tenant with more URLs than that
 * in use makes every request parse its URL again, as each did before.
 */
#define PARSED_URLS_MAX 1024
#define PARSED_URL_BYTES_MAX (1024 * 1024)

static HTAB *parsed_urls = NULL;
static Size parsed_url_bytes = 0;

/*
 * A socket curl asked us to watch, or one of the connections it opened
 * (open_socket_callback()) while it is open: kept-alive connections that
 * curl watches no more between requests stay in wait_set, for readability,
 * so that the set is made anew only when a connection opens or closes, not
 * at every request.
 */
typedef struct HttpSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN, _OUT or _INOUT, or
								 * CURL_POLL_NONE when curl watches it not */
	bool		ours;			/* opened by open_socket_callback() */
	bool		quiet;			/* not in the set while unwatched: it was
								 * readable then (its peer closed it) */
	int			pos;			/* its position in wait_set, or -1 */
} HttpSocket;

static CURLM *multi = NULL;
static int	n_in_flight = 0;

/* the transfers whose host names are being looked up, and the lookups' pipe */
static dlist_head looking_up = DLIST_STATIC_INIT(looking_up);
static int	lookup_fd = -1;
static int	lookup_pos = -1;	/* its position in wait_set */

static HttpSocket *sockets = NULL;
static int	n_sockets = 0;
static int	max_sockets = 0;

static WaitEventSet *wait_set = NULL;
static bool wait_set_stale = true;

/*
 * A curl easy handle, and the request policy it was set up with
 * (request_policy(): the TLS settings of its target, copied here, in
 * TopMemoryContext), or none (policy_set false): made or reset since.  A
 * finished transfer's handle keeps its policy and the worker's options of
 * every transfer (prepare_transfer()), and the next transfer whose target
 * asks that same policy takes it as it is and sets every option of its own
 * (request_target(), prepare_transfer()): a reset and setting all again
 * cost a few percent of a request.  A transfer that asks another policy
 * takes a handle reset.  A handle is reset after HANDLE_TRANSFERS_MAX
 * transfers, and after one that failed or opened a connection: curl counts
 * in the handle, until a reset, the requests it sent again after a kept
 * connection died, and fails the transfer that would be the sixth (one
 * receiver's dropped connections must not fail another's requests).  And
 * after one whose policy has a client key password, which is kept no
 * longer than a transfer.
 */
#define HANDLE_TRANSFERS_MAX 16
#define HANDLE_SCAN_MAX 16

typedef struct EasyHandle
{
	CURL	   *easy;
	bool		policy_set;
	int			transfers;		/* made with its policy */
	bool		tls_verify;
	char	   *ca_file;
	char	   *client_cert_file;
	char	   *client_key_file;
	char	   *client_key_password;
} EasyHandle;

/*
 * Easy handles of finished transfers, detached from their connection
 * caches, for the next ones: making and freeing one per request costs more
 * than the request itself.  Never more than the most in flight.
 */
static EasyHandle **idle_easy = NULL;
static int	n_idle_easy = 0;
static int	max_idle_easy = 0;

/*
 * an idle transport's connections are closed after this long, or after
 * CROWDED_IDLE_MS while the worker has more than KEPT_SOCKETS_FACTOR times
 * webhook.max_in_flight sockets open (http_close_idle())
 */
#define SHARE_IDLE_MS (5 * 60 * 1000)
#define CROWDED_IDLE_MS (10 * 1000)
#define KEPT_SOCKETS_FACTOR 2

static bool timer_armed = false;
static TimestampTz timer_deadline = 0;

/*
 * A libcurl call failed: the one place that makes it an error, with what
 * could not be done in the message and libcurl's own words, if any, in the
 * detail.  Only running out of memory has an errcode of its own; anything
 * else is a libcurl that cannot do what we ask (built without an option we
 * rely on, say), which must stop the request rather than let it go out
 * without a TLS, protocol or redirect setting.
 */
static void curl_failed(bool out_of_memory, const char *what,
						const char *detail) pg_attribute_noreturn();

static void
curl_failed(bool out_of_memory, const char *what, const char *detail)
{
	ereport(ERROR,
			(errcode(out_of_memory ? ERRCODE_OUT_OF_MEMORY : ERRCODE_INTERNAL_ERROR),
			 errmsg("could not %s", what),
			 detail ? errdetail("libcurl reports: %s.", detail) : 0));
}

/* The checks of libcurl's three return-code families. */
static inline void
easy_check(CURLcode rc, const char *what)
{
	if (unlikely(rc != CURLE_OK))
		curl_failed(rc == CURLE_OUT_OF_MEMORY, what, curl_easy_strerror(rc));
}

static inline void
multi_check(CURLMcode rc, const char *what)
{
	if (unlikely(rc != CURLM_OK))
		curl_failed(rc == CURLM_OUT_OF_MEMORY, what, curl_multi_strerror(rc));
}

static inline void
share_check(CURLSHcode rc, const char *what)
{
	if (unlikely(rc != CURLSHE_OK))
		curl_failed(rc == CURLSHE_NOMEM, what, curl_share_strerror(rc));
}

/* Every option set and every information read, checked, named in the error */
#define easy_setopt(easy, option, value) \
	easy_check(curl_easy_setopt((easy), (option), (value)), \
			   "set libcurl option " #option)
#define multi_setopt(multi, option, value) \
	multi_check(curl_multi_setopt((multi), (option), (value)), \
				"set libcurl option " #option)
#define share_setopt(share, option, value) \
	share_check(curl_share_setopt((share), (option), (value)), \
				"set libcurl option " #option)
#define easy_getinfo(easy, info, value) \
	easy_check(curl_easy_getinfo((easy), (info), (value)), \
			   "read libcurl information " #info)

/* A handle that libcurl could not make (it has no more to say). */
static void *
curl_made(void *handle, const char *what)
{
	if (unlikely(handle == NULL))
		curl_failed(true, what, NULL);
	return handle;
}

static uint32
wait_events_for(int what)
{
	uint32		events = 0;

	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT || what == CURL_POLL_NONE)
		events |= WL_SOCKET_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= WL_SOCKET_WRITEABLE;
	return events;
}

/* The entry of fd in sockets, or NULL. */
static HttpSocket *
socket_entry(curl_socket_t fd)
{
	int			i;

	for (i = 0; i < n_sockets; i++)
		if (sockets[i].fd == fd)
			return &sockets[i];
	return NULL;
}

/* Forget a socket: it is closed, or curl is done with one not ours. */
static void
forget_socket(HttpSocket *sock)
{
	if (sock->pos >= 0)
		wait_set_stale = true;
	*sock = sockets[--n_sockets];
}

/*
 * A new entry of sockets for fd, not in the wait set yet, or NULL when
 * there is no memory for it: this is called from curl's callbacks, which
 * must not throw.
 */
static HttpSocket *
new_socket(curl_socket_t fd, bool ours)
{
	HttpSocket *sock;

	if (n_sockets == max_sockets)
	{
		int			max = Max(16, max_sockets * 2);
		HttpSocket *room = MemoryContextAllocExtended(TopMemoryContext,
													  sizeof(HttpSocket) * max,
													  MCXT_ALLOC_NO_OOM);

		if (room == NULL)
			return NULL;
		if (sockets != NULL)
		{
			memcpy(room, sockets, sizeof(HttpSocket) * n_sockets);
			pfree(sockets);
		}
		sockets = room;
		max_sockets = max;
	}
	sock = &sockets[n_sockets++];
	sock->fd = fd;
	sock->what = CURL_POLL_NONE;
	sock->ours = ours;
	sock->quiet = false;
	sock->pos = -1;
	return sock;
}

/*
 * CURLMOPT_SOCKETFUNCTION: track the sockets curl wants watched.  A
 * connection of ours that curl watches no more stays in the set, for
 * readability (wait_events_for(CURL_POLL_NONE)), until it closes.
 */
static int
socket_callback(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	HttpSocket *sock = socket_entry(fd);

	if (what == CURL_POLL_REMOVE)
	{
		if (sock == NULL)
			return 0;
		if (!sock->ours)
		{
			forget_socket(sock);
			return 0;
		}
		what = CURL_POLL_NONE;
	}
	else if (sock == NULL && (sock = new_socket(fd, false)) == NULL)
		return -1;
	else
		sock->quiet = false;

	if (sock->pos < 0)
	{
		/* the next wait adds it, unless curl watches it not */
		sock->what = what;
		if (what != CURL_POLL_NONE)
			wait_set_stale = true;
	}
	else if (sock->what != what)
	{
		sock->what = what;
		if (!wait_set_stale)
			ModifyWaitEvent(wait_set, sock->pos, wait_events_for(what), NULL);
	}
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: remember when curl wants to be called back. */
static int
timer_callback(CURLM *m, long timeout_ms, void *userp)
{
	if (timeout_ms < 0)
		timer_armed = false;
	else
	{
		timer_armed = true;
		timer_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	}
	return 0;
}

void
http_init(void)
{
	multi = curl_made(curl_multi_init(), "create a libcurl multi handle");
	multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_callback);
	multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_callback);
	http_keep_connections();
	lookup_fd = lookup_socket();
}

/*
 * Keep up to webhook.max_in_flight connections open in each transport's
 * connection cache between requests (so as many as it may have in flight).
 * curl's default keeps four per request in flight at the moment one ends:
 * a burst's connections were closed as it ended, and the next burst opened
 * them again, a handshake (and, for the receiver, a connection to accept)
 * each: some 1,800 connections in 10 s at 2,000 orders/s, and most of the
 * 95th percentile of commit to arrival.  Again after a reload.
 */
void
http_keep_connections(void)
{
	multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) webhook_max_in_flight);
}

int
http_in_flight(void)
{
	return n_in_flight;
}

/* CURLOPT_WRITEFUNCTION: keep the first webhook.max_response_bytes. */
static size_t
write_callback(char *data, size_t size, size_t nmemb, void *userp)
{
	Attempt    *req = (Attempt *) userp;
	size_t		len = size * nmemb;
	size_t		room = webhook_max_response_bytes > req->response_body.len
		? webhook_max_response_bytes - req->response_body.len : 0;

	if (room > 0)
		appendBinaryStringInfo(&req->response_body, data, Min(len, room));
	return len;
}

/*
 * CURLOPT_HEADERFUNCTION: collect the final response's headers, each
 * name (lower-case) and value ended by a NUL byte (for
 * attempt_response_headers()), and note Retry-After.
 */
static size_t
header_callback(char *data, size_t size, size_t nmemb, void *userp)
{
	Attempt    *req = (Attempt *) userp;
	size_t		len = size * nmemb;
	char		line[1024];
	char	   *colon;
	char	   *value;
	char	   *p;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
	{
		/* a new response (after 1xx): forget the previous one's headers */
		resetStringInfo(&req->response_headers);
		req->retry_after = -1;
		return len;
	}

	/* (what follows a NUL byte is left out, as by every step below) */
	memcpy(line, data, Min(len, sizeof(line) - 1));
	line[Min(len, sizeof(line) - 1)] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	colon = strchr(line, ':');
	if (colon == NULL || colon == line)
		return len;
	*colon = '\0';
	for (p = line; *p; p++)
		*p = pg_tolower((unsigned char) *p);
	value = colon + 1;
	while (*value == ' ' || *value == '\t')
		value++;

	if (strcmp(line, "retry-after") == 0)
	{
		/* seconds or an HTTP date; any size the receiver likes, clamped */
		if (strspn(value, "0123456789") == strlen(value) && *value)
			req->retry_after = Min(atof(value), RETRY_AFTER_MAX_S);
		else
		{
			time_t		when = curl_getdate(value, NULL);

			if (when > 0)
				req->retry_after = Min(Max(0, (double) (when - time(NULL))),
									   RETRY_AFTER_MAX_S);
		}
	}

	/* a header the database could not store as text is left out */
	if (req->response_headers.len < HTTP_MAX_HEADER_BYTES &&
		pg_verifymbstr(line, strlen(line), true) &&
		pg_verifymbstr(value, strlen(value), true))
	{
		appendBinaryStringInfo(&req->response_headers, line, strlen(line) + 1);
		appendBinaryStringInfo(&req->response_headers, value, strlen(value) + 1);
	}
	return len;
}

/* Close a transport's connection cache, if it has one; false if curl still uses it. */
static bool
close_share(TransportConnections *c)
{
	if (c->share != NULL && curl_share_cleanup((CURLSH *) c->share) != CURLSHE_OK)
		return false;
	c->share = NULL;
	return true;
}

/*
 * Close a transport's connection cache if it is idle: unused for
 * SHARE_IDLE_MS, or for CROWDED_IDLE_MS while the worker has more sockets
 * open than KEPT_SOCKETS_FACTOR times webhook.max_in_flight (each cache
 * keeps up to that many: http_keep_connections(); a tenant's thousand
 * transports, each used once in a while, must not fill the worker's file
 * descriptors), or made under an earlier deny list.  True when it has none
 * open (transport.c then may forget the transport).
 */
bool
http_close_idle(TransportConnections *c, TimestampTz now)
{
	if (c->share == NULL)
		return true;
	if (c->in_use > 0)
		return false;
	if (c->deny_generation != deny_list_generation() ||
		TimestampDifferenceExceeds(c->last_used, now,
								   n_sockets > KEPT_SOCKETS_FACTOR * webhook_max_in_flight
								   ? CROWDED_IDLE_MS : SHARE_IDLE_MS))
		return close_share(c);
	return false;
}

/*
 * The connection cache of a transport, made on first use, or made anew
 * when it is idle and was made under an earlier deny list.  One still in
 * use under an earlier deny list is returned with *fresh set: the request
 * must not reuse its connections.
 */
static CURLSH *
transport_share(Transport *t, bool *fresh)
{
	TransportConnections *c = &t->connections;
	uint64		generation = deny_list_generation();
	CURLSH	   *share;

	*fresh = false;
	if (c->share != NULL && c->deny_generation != generation)
	{
		if (c->in_use > 0 || !close_share(c))
		{
			*fresh = true;
			return (CURLSH *) c->share;
		}
	}
	if (c->share != NULL)
		return (CURLSH *) c->share;

	share = curl_made(curl_share_init(), "create a libcurl share handle");
	PG_TRY();
	{
		share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
		share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	}
	PG_CATCH();
	{
		curl_share_cleanup(share);
		PG_RE_THROW();
	}
	PG_END_TRY();
	c->share = share;
	c->in_use = 0;
	c->last_used = GetCurrentTimestamp();
	c->deny_generation = generation;
	return share;
}

/* Count a request in (+1) or out (-1) of its transport's connection cache. */
static void
share_use(Transport *t, int delta)
{
	t->connections.in_use += delta;
	t->connections.last_used = GetCurrentTimestamp();
}

/* A transfer, or parsed_urls, is done with url: freed once all are. */
static void
release_url(ParsedUrl *url)
{
	if (url == NULL || --url->refs > 0)
		return;
	curl_url_cleanup(url->curlu);
	curl_free(url->host);
	curl_free(url->port);
	pfree(url);
}

/* a and b are both NULL, or the same text */
static bool
same_text(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* Whether handle was set up with the request policy target asks. */
static bool
has_policy(const EasyHandle *handle, const HttpTarget *target)
{
	return handle->policy_set &&
		handle->tls_verify == target->tls_verify &&
		same_text(handle->ca_file, target->ca_file) &&
		same_text(handle->client_cert_file, target->client_cert_file) &&
		same_text(handle->client_key_file, target->client_key_file) &&
		same_text(handle->client_key_password, target->client_key_password);
}

/* a copy of text (or NULL) in TopMemoryContext */
static char *
kept_text(const char *text)
{
	return text ? MemoryContextStrdup(TopMemoryContext, text) : NULL;
}

/* Note that handle's policy was set, as target asks. */
static void
remember_policy(EasyHandle *handle, const HttpTarget *target)
{
	handle->tls_verify = target->tls_verify;
	handle->ca_file = kept_text(target->ca_file);
	handle->client_cert_file = kept_text(target->client_cert_file);
	handle->client_key_file = kept_text(target->client_key_file);
	handle->client_key_password = kept_text(target->client_key_password);
	handle->policy_set = true;
}

/* Forget handle's policy (it is reset, or freed), its copies freed. */
static void
forget_policy(EasyHandle *handle)
{
	char	  **texts[] = {&handle->ca_file, &handle->client_cert_file,
		&handle->client_key_file, &handle->client_key_password};

	handle->policy_set = false;
	handle->transfers = 0;
	for (int i = 0; i < (int) lengthof(texts); i++)
	{
		if (*texts[i] == NULL)
			continue;
		explicit_bzero(*texts[i], strlen(*texts[i]));
		pfree(*texts[i]);
		*texts[i] = NULL;
	}
}

/*
 * An easy handle for a transfer to target: an idle one set up with the
 * policy target asks, among the HANDLE_SCAN_MAX kept last (a request's
 * start costs no more with more handles kept), else another idle one,
 * reset, else a new one.
 */
static EasyHandle *
easy_handle(const HttpTarget *target)
{
	EasyHandle *handle;

	for (int i = n_idle_easy - 1; i >= Max(0, n_idle_easy - HANDLE_SCAN_MAX); i--)
	{
		if (has_policy(idle_easy[i], target))
		{
			handle = idle_easy[i];
			idle_easy[i] = idle_easy[--n_idle_easy];
			return handle;
		}
	}
	if (n_idle_easy > 0)
	{
		handle = idle_easy[--n_idle_easy];
		curl_easy_reset(handle->easy);
		forget_policy(handle);
		return handle;
	}
	/* (ours first: curl's handle cannot be left behind by an error) */
	handle = MemoryContextAllocZero(TopMemoryContext, sizeof(EasyHandle));
	handle->easy = curl_easy_init();
	if (handle->easy == NULL)
	{
		pfree(handle);
		curl_failed(false, "create a libcurl easy handle", NULL);
	}
	return handle;
}

/*
 * End a transfer: its curl handle, detached from its transport's connection
 * cache (which can then be closed) and from the transfer's memory that
 * curl could write or read, keeping its request policy (or reset: see
 * EasyHandle), is kept for another transfer, up to as many as may be in
 * flight.  (Its header list goes with the attempt's context.)
 */
static void
transfer_end(HttpTransfer *transfer)
{
	EasyHandle *handle = transfer->handle;

	if (handle != NULL)
	{
		CURL	   *easy = handle->easy;

		/*
		 * (http_start() made room for every handle there is; and
		 * curl_easy_reset() keeps a CURLOPT_RESOLVE list curl did not read
		 * yet, which the next transfer's curl would read, freed)
		 */
		if (n_idle_easy < Min(max_idle_easy, webhook_max_in_flight) &&
			curl_easy_setopt(easy, CURLOPT_SHARE, NULL) == CURLE_OK &&
			curl_easy_setopt(easy, CURLOPT_RESOLVE, NULL) == CURLE_OK &&
			curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL) == CURLE_OK &&
			curl_easy_setopt(easy, CURLOPT_CURLU, NULL) == CURLE_OK)
		{
			if (++handle->transfers >= HANDLE_TRANSFERS_MAX ||
				handle->client_key_password != NULL)
				forget_policy(handle);
			if (!handle->policy_set)
			{
				curl_easy_reset(easy);
				forget_policy(handle);	/* (what a partial policy kept) */
			}
			idle_easy[n_idle_easy++] = handle;
		}
		else
		{
			curl_easy_cleanup(easy);
			forget_policy(handle);
			pfree(handle);
		}
	}
	/* (after the handle, which used it) */
	release_url(transfer->url);
	transfer->url = NULL;
	transfer->handle = NULL;
	transfer->easy = NULL;
	transfer->header_list = NULL;
}

/*
 * CURLOPT_OPENSOCKETFUNCTION: the address policy (address.c), at every
 * connection and after name resolution; clientp is the request's refusal
 * buffer, which receives why an address was refused.
 */
static curl_socket_t
open_socket_callback(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	curl_socket_t fd;
	HttpSocket *sock;

	if (address_refused(address->family, &address->addr, (char *) clientp))
		return CURL_SOCKET_BAD;
	fd = socket(address->family, address->socktype, address->protocol);
	if (fd == CURL_SOCKET_BAD)
		return fd;
	/* (an entry left by a socket closed behind our back is out of date) */
	sock = socket_entry(fd);
	if (sock != NULL)
		forget_socket(sock);
	if (new_socket(fd, true) == NULL)
	{
		close(fd);
		return CURL_SOCKET_BAD;
	}
	return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: a connection closes, and leaves the set. */
static int
close_socket_callback(void *clientp, curl_socket_t fd)
{
	HttpSocket *sock = socket_entry(fd);

	if (sock != NULL)
		forget_socket(sock);
	return close(fd);
}

/*
 * The request policy, the same for every request the extension makes (the
 * worker's, and register()'s HEAD check): over http or https only, no
 * redirect followed, no proxy (whatever the environment says), the address
 * policy at every connection (request_target() gives it its refusal
 * buffer), and target's TLS settings.  (The user agent is one of a
 * delivery's header lines: attempt_header_lines().)  On a handle made or
 * reset since its last request policy: a setting left out here would
 * otherwise stay.
 */
static void
request_policy(CURL *easy, const HttpTarget *target)
{
	easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	easy_setopt(easy, CURLOPT_NOPROXY, "*");
	easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_socket_callback);
	easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, close_socket_callback);
	easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, target->tls_verify ? 1L : 0L);
	easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, target->tls_verify ? 2L : 0L);
	if (target->ca_file)
		easy_setopt(easy, CURLOPT_CAINFO, target->ca_file);
	if (target->client_cert_file)
		easy_setopt(easy, CURLOPT_SSLCERT, target->client_cert_file);
	if (target->client_key_file)
		easy_setopt(easy, CURLOPT_SSLKEY, target->client_key_file);
	if (target->client_key_password)
		easy_setopt(easy, CURLOPT_KEYPASSWD, target->client_key_password);
}

/*
 * What each request sets, whatever its handle did before: target's URL
 * and timeouts, and refusal (a char[ADDRESS_REFUSAL_LEN], set to ""), which
 * receives why the address policy refused an address.
 */
static void
request_target(CURL *easy, const HttpTarget *target, char *refusal)
{
	refusal[0] = '\0';
	easy_setopt(easy, CURLOPT_URL, target->url);
	easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, target->connect_timeout_ms);
	easy_setopt(easy, CURLOPT_TIMEOUT_MS, target->timeout_ms);
	easy_setopt(easy, CURLOPT_OPENSOCKETDATA, refusal);
}

/*
 * CURLOPT_RESOLVER_START_FUNCTION: curl is about to look a name up itself,
 * which the worker never lets it do (lookup.c says why): it was given the
 * addresses of the transfer's name (CURLOPT_RESOLVE), and asks for an
 * address only to turn it into one.
 */
static int
resolver_start_callback(void *resolver_state, void *reserved, void *userp)
{
	ParsedUrl  *url = ((HttpTransfer *) userp)->url;

	return url != NULL && url->address_host ? 0 : 1;
}

/*
 * Parse a URL for curl (CURLOPT_CURLU, parsed as curl parses CURLOPT_URL)
 * and for its host: one that is a name, not an address, is to be looked up
 * (lookup.c) before the request goes to curl.  A URL curl cannot parse is
 * left to curl (no curlu), which fails the request in its own words; one
 * whose host cannot be read is failed by curl, which may not look it up
 * (resolver_start_callback()).  Returned with one reference, the caller's.
 * (One allocation of ours, before curl's: an error cannot leave either.)
 */
static ParsedUrl *
parse_url(const char *text, size_t len)
{
	ParsedUrl  *url = MemoryContextAllocZero(TopMemoryContext, sizeof(ParsedUrl) + len + 1);
	CURLU	   *curlu;
	char	   *host = NULL;
	char	   *port = NULL;
	struct in_addr ipv4;

	url->text = (char *) (url + 1);
	memcpy(url->text, text, len + 1);
	url->refs = 1;
	curlu = curl_url();
	if (curlu == NULL)
	{
		pfree(url);
		curl_failed(true, "create a libcurl URL handle", NULL);
	}
	url->curlu = curlu;
	if (curl_url_set(curlu, CURLUPART_URL, text,
					 CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
	{
		curl_url_cleanup(curlu);
		url->curlu = NULL;
		return url;
	}
	if (curl_url_get(curlu, CURLUPART_HOST, &host, CURLU_PUNYCODE) == CURLUE_OK &&
		curl_url_get(curlu, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
	{
		/* (an IPv6 address comes in brackets, an IPv4 one written as curl writes it) */
		url->address_host = host[0] == '[' || inet_pton(AF_INET, host, &ipv4) == 1;
		if (!url->address_host)
		{
			char	   *p;

			/* (names are the same whatever their case: one lookup) */
			for (p = host; *p; p++)
				*p = pg_tolower((unsigned char) *p);
			url->host = host;
			url->port = port;
			return url;
		}
	}
	curl_free(host);
	curl_free(port);
	return url;
}

/* Forget every URL kept parsed (those in use stay, until their transfers end). */
static void
forget_urls(void)
{
	HASH_SEQ_STATUS seq;
	ParsedUrlEntry *entry;

	hash_seq_init(&seq, parsed_urls);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		release_url(entry->url);
		hash_search(parsed_urls, &entry->hash, HASH_REMOVE, NULL);
	}
	parsed_url_bytes = 0;
}

/*
 * The transfer's URL, parsed: as it was for an earlier request to it, or
 * now, and then kept for the next ones (another URL of the same hash is
 * forgotten): a parse at each request was some 2 % of the worker's CPU.
 */
static void
transfer_url(HttpTransfer *transfer)
{
	const char *text = transfer->attempt->url;
	size_t		len = strlen(text);
	uint64		hash = hash_bytes_extended((const unsigned char *) text, len, 0);
	ParsedUrlEntry *entry;
	bool		found;

	if (parsed_urls == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(ParsedUrlEntry);
		ctl.hcxt = TopMemoryContext;
		parsed_urls = hash_create("webhook parsed URLs", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(parsed_urls, &hash, HASH_FIND, NULL);
	if (entry != NULL && strcmp(entry->url->text, text) == 0)
	{
		entry->url->refs++;
		transfer->url = entry->url;
		return;
	}

	transfer->url = parse_url(text, len);
	if (entry == NULL &&
		(hash_get_num_entries(parsed_urls) >= PARSED_URLS_MAX ||
		 parsed_url_bytes + len > PARSED_URL_BYTES_MAX))
		forget_urls();
	entry = hash_search(parsed_urls, &hash, HASH_ENTER, &found);
	if (found)
	{
		parsed_url_bytes -= strlen(entry->url->text);
		release_url(entry->url);
	}
	entry->url = transfer->url;
	entry->url->refs++;
	parsed_url_bytes += len;
}

/*
 * Configure the transfer's easy handle: body, headers (attempt.c composes
 * them, signature and credentials included), timeouts and TLS.  May throw
 * (a secret that cannot sign); the caller catches.
 */
static void
prepare_transfer(HttpTransfer *transfer)
{
	Attempt    *req = transfer->attempt;
	HttpTarget	target = {
		.url = req->url,
		.connect_timeout_ms = req->connect_timeout_ms,
		.timeout_ms = req->timeout_ms,
		.tls_verify = req->tls_verify,
		.ca_file = req->ca_file,
		.client_cert_file = req->client_cert_file,
		.client_key_file = req->client_key_file,
		.client_key_password = req->client_key_password,
	};
	List	   *lines;
	ListCell   *lc;
	CURL	   *easy;
	CURLSH	   *share;
	bool		fresh;

	/*
	 * curl reads the header list and neither copies nor frees it: its
	 * nodes, like the lines, are in the attempt's context, which outlives
	 * the transfer.
	 */
	lines = attempt_header_lines(req, (int64) time(NULL));
	if (lines != NIL)
	{
		struct curl_slist *nodes = palloc(sizeof(struct curl_slist) * list_length(lines));

		foreach(lc, lines)
		{
			int			i = foreach_current_index(lc);

			nodes[i].data = lfirst(lc);
			nodes[i].next = lnext(lines, lc) ? &nodes[i + 1] : NULL;
		}
		transfer->header_list = nodes;
	}

	transfer->handle = easy_handle(&target);
	easy = transfer->easy = transfer->handle->easy;
	if (!transfer->handle->policy_set)
	{
		request_policy(easy, &target);
		easy_setopt(easy, CURLOPT_RESOLVER_START_FUNCTION, resolver_start_callback);
		easy_setopt(easy, CURLOPT_POST, 1L);
		easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_callback);
		easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_callback);
		remember_policy(transfer->handle, &target);
	}

	/* every option that is the transfer's own, set on every handle */
	share = transport_share(req->transport, &fresh);
	request_target(easy, &target, transfer->denied);
	transfer_url(transfer);
	easy_setopt(easy, CURLOPT_CURLU, transfer->url->curlu);
	easy_setopt(easy, CURLOPT_RESOLVER_START_DATA, transfer);
	easy_setopt(easy, CURLOPT_PRIVATE, transfer);
	easy_setopt(easy, CURLOPT_SHARE, share);
	easy_setopt(easy, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
	easy_setopt(easy, CURLOPT_POSTFIELDS, req->body);
	easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(req->body));
	easy_setopt(easy, CURLOPT_HTTPHEADER, transfer->header_list);
	easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer->errbuf);
	easy_setopt(easy, CURLOPT_WRITEDATA, req);
	easy_setopt(easy, CURLOPT_HEADERDATA, req);
}

/* Give a prepared transfer to curl. */
static void
transfer_go(HttpTransfer *transfer)
{
	multi_check(curl_multi_add_handle(multi, transfer->easy),
				"add a request to the libcurl multi handle");
	transfer->in_multi = true;
}

/*
 * A transfer is over: its handle out of the multi handle (or its wait for
 * its host's addresses) and kept for another, its attempt to done.
 */
static void
transfer_done(HttpTransfer *transfer, dlist_head *done)
{
	Attempt    *req = transfer->attempt;

	if (transfer->in_multi)
		multi_check(curl_multi_remove_handle(multi, transfer->easy),
					"remove a request from the libcurl multi handle");
	else
		dlist_delete(&transfer->lookup_node);
	transfer_end(transfer);
	req->transfer = NULL;
	n_in_flight--;
	share_use(req->transport, -1);
	dlist_push_tail(done, &req->node);
}

/* A transfer is over at now without a response, for error (in its context). */
static void
transfer_unanswered(HttpTransfer *transfer, TimestampTz now, char *error, dlist_head *done)
{
	Attempt    *req = transfer->attempt;

	/* its handle, if curl had it, is reset after it (EasyHandle) */
	if (transfer->handle != NULL)
		forget_policy(transfer->handle);
	req->status = 0;
	req->duration_ms = (now - req->started_at) / 1000.0;
	req->error = error;
	transfer_done(transfer, done);
}

/*
 * Follow a transfer that waits for its host's addresses (in looking_up),
 * at now: found, it goes to curl with them and with what is left of its
 * timeouts; it fails when the lookup failed, or its timeouts passed first
 * (in curl's words, as before, and as a timeout); else it waits on.  One
 * whose name was not even looked up by then, for want of room, is ended
 * as one ended for another tenant's request is: neither a step of its
 * schedule nor a timeout of its transport.
 */
static void
follow_lookup(HttpTransfer *transfer, TimestampTz now, dlist_head *done)
{
	Attempt    *req = transfer->attempt;
	const char *addresses = NULL;
	const char *error = NULL;
	long		waited_ms;

	switch (lookup_host(transfer->url->host, req->tenant, req->started_at, &addresses, &error))
	{
		case LOOKUP_FOUND:
			if (now >= transfer->lookup_deadline)
				break;
			/*
			 * "+": curl's cache lets them go after its minute, as its own;
			 * a connection curl opens again later in the transfer finds
			 * none, and fails at once (resolver_start_callback()).  A longer
			 * cache would cost every transfer: curl walks it at each end.
			 */
			transfer->resolve.data = psprintf("+%s:%s:%s", transfer->url->host, transfer->url->port,
											  addresses);
			transfer->resolve.next = NULL;
			easy_setopt(transfer->easy, CURLOPT_RESOLVE, &transfer->resolve);
			waited_ms = (now - req->started_at) / 1000;
			if (waited_ms > 0)
			{
				easy_setopt(transfer->easy, CURLOPT_CONNECTTIMEOUT_MS,
							Max(1, req->connect_timeout_ms - waited_ms));
				easy_setopt(transfer->easy, CURLOPT_TIMEOUT_MS,
							Max(1, req->timeout_ms - waited_ms));
			}
			transfer->waited_ms = waited_ms;
			transfer_go(transfer);
			dlist_delete(&transfer->lookup_node);
			return;
		case LOOKUP_FAILED:
			transfer_unanswered(transfer, now, pstrdup(error), done);
			return;
		case LOOKUP_PENDING:
			if (now < transfer->lookup_deadline)
				return;
			break;
		case LOOKUP_QUEUED:
			if (now < transfer->lookup_deadline)
				return;
			/* no name server was slow: as a request ended for another's (queue.c) */
			req->ended_early = true;
			transfer_unanswered(transfer, now,
								psprintf("ended after %ld ms waiting for its name to be looked up: tenant \"%s\" had all the name lookups it may have under way",
										 (long) ((now - req->started_at) / 1000), req->tenant),
								done);
			return;
	}
	req->timed_out = true;
	transfer_unanswered(transfer, now,
						psprintf("Resolving timed out after %ld milliseconds",
								 (long) ((now - req->started_at) / 1000)),
						done);
}

/*
 * Follow every transfer that waits for its host's addresses, once lookups
 * ended or a deadline passed.
 */
static void
follow_lookups(dlist_head *done)
{
	dlist_mutable_iter iter;
	TimestampTz now = GetCurrentTimestamp();

	lookup_collect();
	dlist_foreach_modify(iter, &looking_up)
	{
		HttpTransfer *transfer = dlist_container(HttpTransfer, lookup_node, iter.cur);
		MemoryContext old = MemoryContextSwitchTo(transfer->attempt->cxt);

		follow_lookup(transfer, now, done);
		MemoryContextSwitchTo(old);
	}
}

/* How long until the first transfer waiting for its host's addresses times out. */
static long
lookup_wait_ms(long timeout)
{
	dlist_iter	iter;
	TimestampTz now = GetCurrentTimestamp();

	dlist_foreach(iter, &looking_up)
	{
		HttpTransfer *transfer = dlist_container(HttpTransfer, lookup_node, iter.cur);

		timeout = Min(timeout,
					  TimestampDifferenceMilliseconds(now, transfer->lookup_deadline));
	}
	return timeout;
}

/*
 * An empty buffer for a response's body or headers, small: most answers
 * have no body and a few short headers, and a buffer of initStringInfo()'s
 * size takes a block of the attempt's memory of its own (malloc()).
 */
static void
init_response_buffer(StringInfo buf)
{
	buf->maxlen = 128;
	buf->data = palloc(buf->maxlen);
	resetStringInfo(buf);
}

/*
 * Start sending an attempt.  One that cannot even be prepared goes straight
 * to done, with the reason as its error.  Caller must not be inside a
 * transaction that an error would leave half done: errors are caught here.
 */
void
http_start(Attempt *req, dlist_head *done)
{
	MemoryContext old = MemoryContextSwitchTo(req->cxt);
	HttpTransfer *transfer;

	init_response_buffer(&req->response_body);
	init_response_buffer(&req->response_headers);
	req->started_at = GetCurrentTimestamp();

	/* a request that could not be made (its transform failed) is not sent */
	if (req->error != NULL)
	{
		dlist_push_tail(done, &req->node);
		MemoryContextSwitchTo(old);
		return;
	}
	transfer = palloc0(sizeof(HttpTransfer));
	transfer->attempt = req;
	/* room to keep its handle, and every other, when they are done */
	idle_easy = top_array_room(idle_easy, n_idle_easy + n_in_flight,
							   &max_idle_easy, sizeof(EasyHandle *));

	PG_TRY();
	{
		prepare_transfer(transfer);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(req->cxt);
		edata = CopyErrorData();
		FlushErrorState();
		req->error = psprintf("request not sent: %s", edata->message);
		transfer_end(transfer);
		dlist_push_tail(done, &req->node);
		MemoryContextSwitchTo(old);
		return;
	}
	PG_END_TRY();

	req->transfer = transfer;
	n_in_flight++;
	share_use(req->transport, +1);
	if (transfer->url->host == NULL)
		transfer_go(transfer);
	else
	{
		transfer->lookup_deadline =
			TimestampTzPlusMilliseconds(req->started_at,
										Min(req->connect_timeout_ms, req->timeout_ms));
		dlist_push_tail(&looking_up, &transfer->lookup_node);
		follow_lookup(transfer, req->started_at, done);
	}
	MemoryContextSwitchTo(old);
}

/*
 * End the attempt in flight before its answer, for why (the worker needs
 * its slot: worker.c), as a request that got no response: it is recorded,
 * and tried again (ended_early: queue.c's record).  curl closes its
 * connection (an HTTP/1 one; an HTTP/2 stream is reset).
 */
void
http_end_early(Attempt *req, const char *why, dlist_head *done)
{
	Assert(req->transfer != NULL);
	req->ended_early = true;
	transfer_unanswered(req->transfer, GetCurrentTimestamp(),
						MemoryContextStrdup(req->cxt, why), done);
}

/* Move every finished transfer's attempt to done, with its outcome. */
static void
collect_finished(dlist_head *done)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		HttpTransfer *transfer;
		Attempt    *req;
		long		status = 0;
		curl_off_t	total_us = 0;
		long		connects = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &transfer);
		easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME_T, &total_us);
		easy_getinfo(msg->easy_handle, CURLINFO_NUM_CONNECTS, &connects);
		req = transfer->attempt;
		/* its handle is reset after it (EasyHandle says why) */
		if (msg->data.result != CURLE_OK || connects > 0)
			forget_policy(transfer->handle);

		req->status = (int32) status;
		req->duration_ms = total_us / 1000.0 + transfer->waited_ms;
		req->timed_out = (msg->data.result == CURLE_OPERATION_TIMEDOUT);
		/* a denied address may have been one of several the host has */
		if (msg->data.result != CURLE_OK)
			req->error = MemoryContextStrdup(req->cxt,
											 transfer->denied[0] ? transfer->denied
											 : transfer->errbuf[0] ? transfer->errbuf
											 : curl_easy_strerror(msg->data.result));
		if (!pg_verifymbstr(req->response_body.data, req->response_body.len, true))
		{
			/* keep only what the database can store as text */
			int			len = req->response_body.len;

			resetStringInfo(&req->response_body);
			appendStringInfo(&req->response_body,
							 "(%d bytes that are not valid text in the database encoding)", len);
		}

		transfer_done(transfer, done);
	}
}

/* Make the wait set anew: the latch, postmaster death and curl's sockets. */
static void
rebuild_wait_set(void)
{
	int			i;

	if (wait_set != NULL)
		FreeWaitEventSet(wait_set);
	wait_set = CreateWaitEventSet(TopMemoryContext, n_sockets + 3);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	lookup_pos = AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, lookup_fd, NULL, NULL);
	for (i = 0; i < n_sockets; i++)
	{
		HttpSocket *sock = &sockets[i];

		if (sock->what == CURL_POLL_NONE && (sock->quiet || !sock->ours))
			sock->pos = -1;
		else
			sock->pos = AddWaitEventToSet(wait_set, wait_events_for(sock->what),
										  sock->fd, NULL, NULL);
	}
	wait_set_stale = false;
}

/* Let curl act on a socket (or, with CURL_SOCKET_TIMEOUT, on its timer). */
static void
socket_action(curl_socket_t fd, int mask)
{
	int			running;

	multi_check(curl_multi_socket_action(multi, fd, mask, &running),
				"drive the libcurl multi handle");
}

/*
 * Wait up to max_wait_ms (less if curl needs calling sooner) for the latch
 * or a socket, let curl do its work, and move finished requests to done.
 * Returns true when the latch was set (and resets it).
 */
bool
http_wait(long max_wait_ms, dlist_head *done)
{
	WaitEvent	events[64];
	HttpSocket *sock;
	long		timeout = max_wait_ms;
	bool		latch_set = false;
	bool		lookups_ended = false;
	int			n;
	int			i;

	if (!dlist_is_empty(&looking_up))
		timeout = lookup_wait_ms(timeout);
	if (timer_armed)
		timeout = Min(timeout,
					  TimestampDifferenceMilliseconds(GetCurrentTimestamp(), timer_deadline));
	if (wait_set_stale)
		rebuild_wait_set();

	n = WaitEventSetWait(wait_set, timeout, events, lengthof(events), PG_WAIT_EXTENSION);
	for (i = 0; i < n; i++)
	{
		WaitEvent  *ev = &events[i];

		if (ev->events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			latch_set = true;
		}
		else if (!(ev->events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE)))
			continue;
		else if (ev->pos == lookup_pos)
			lookups_ended = true;
		else if ((sock = socket_entry(ev->fd)) != NULL && sock->what == CURL_POLL_NONE)
		{
			/*
			 * A kept-alive connection that curl watches not: its peer closed
			 * it, most likely, which curl sees when it next picks it.  It
			 * leaves the set, rather than wake every wait until then.
			 */
			sock->quiet = true;
			wait_set_stale = true;
		}
		else
			socket_action(ev->fd,
						  ((ev->events & WL_SOCKET_READABLE) ? CURL_CSELECT_IN : 0) |
						  ((ev->events & WL_SOCKET_WRITEABLE) ? CURL_CSELECT_OUT : 0));
	}

	if (timer_armed && GetCurrentTimestamp() >= timer_deadline)
	{
		timer_armed = false;
		socket_action(CURL_SOCKET_TIMEOUT, 0);
	}
	collect_finished(done);
	if (lookups_ended || lookup_wait_ms(1) <= 0)
		follow_lookups(done);
	return latch_set;
}

/* CURLOPT_XFERINFOFUNCTION of the HEAD check: abort it when cancelled */
static int
head_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			  curl_off_t ultotal, curl_off_t ulnow)
{
	return (QueryCancelPending || ProcDiePending) ? 1 : 0;
}

/*
 * register()'s reachability check: the status code of a HEAD request to
 * target, under the request policy of every request, or 0 when nothing
 * answered.  It blocks, in a backend, for target->timeout_ms at the most,
 * or, while curl looks the host's name up, until its lookup returns (the
 * name server's timeout: curl waits for its lookup thread even when it
 * ends the transfer); a cancel or termination aborts it and is acted on
 * here.  The wait is its caller's alone: the worker looks names up itself
 * (lookup.c).
 */
int
http_head(const HttpTarget *target)
{
	char		refusal[ADDRESS_REFUSAL_LEN];
	CURL	   *easy = curl_made(curl_easy_init(), "create a libcurl easy handle");
	CURLcode	rc;
	long		status = 0;

	PG_TRY();
	{
		request_policy(easy, target);
		request_target(easy, target, refusal);
		easy_setopt(easy, CURLOPT_USERAGENT, webhook_user_agent);
		easy_setopt(easy, CURLOPT_NOBODY, 1L);
		easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
		easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, head_progress);
	}
	PG_CATCH();
	{
		curl_easy_cleanup(easy);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/* a transfer that failed, or whose status cannot be read, had no answer */
	rc = curl_easy_perform(easy);
	if (rc == CURLE_OK)
		rc = curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(easy);

	CHECK_FOR_INTERRUPTS();

	return rc == CURLE_OK ? (int) status : 0;
}
