/*-------------------------------------------------------------------------
 *
 * address.c
 *	  Address policy: which addresses a request may connect to.
 *
 * webhook.deny_networks is a list of CIDRs that no request (the worker's,
 * or register()'s HEAD check) may connect to.  It is parsed and checked when
 * it is set (a GUC check hook): an invalid list is refused and the previous
 * one stays in force, so a typo can never drop the protection of the cloud
 * metadata addresses.  Unspecified addresses (0.0.0.0/8 and ::), which reach
 * the local host, are refused whatever the list says.
 *
 * The check is address_refused(), which http.c calls from curl's
 * open-socket callback, after name resolution, so a host name cannot dodge
 * it; this file knows nothing of curl.  A connection opened under an
 * earlier list may stay alive in a connection cache: http.c asks
 * deny_list_generation() and drops such connections when the list changed.
 *
 * IDENTIFICATION
 *	  src/address.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include "address.h"

/* One network of webhook.deny_networks. */
typedef struct DeniedNetwork
{
	int			family;
	unsigned char addr[16];
	int			bits;
} DeniedNetwork;

/* The parsed list: the "extra" of the setting. */
typedef struct DenyList
{
	int			n;
	DeniedNetwork nets[FLEXIBLE_ARRAY_MEMBER];
} DenyList;

static DenyList *deny_list = NULL;
static uint64 deny_generation = 0;

/*
 * Parse one "address[/bits]" into net.  Returns false when it is not an
 * IPv4 or IPv6 address with an optional prefix length in range.
 */
static bool
parse_network(char *tok, DeniedNetwork *net)
{
	char	   *slash = strchr(tok, '/');
	int			maxbits;

	if (slash)
		*slash = '\0';
	net->family = strchr(tok, ':') ? AF_INET6 : AF_INET;
	maxbits = net->family == AF_INET ? 32 : 128;
	if (inet_pton(net->family, tok, net->addr) != 1)
		return false;
	net->bits = maxbits;
	if (slash)
	{
		const char *digits = slash + 1;

		if (digits[0] == '\0' || strlen(digits) > 3 ||
			strspn(digits, "0123456789") != strlen(digits))
			return false;
		net->bits = atoi(digits);
		if (net->bits > maxbits)
			return false;
	}
	return true;
}

/*
 * GUC check hook of webhook.deny_networks: parse the list into *extra, or
 * refuse it, naming the bad entry.
 */
bool
deny_networks_check(char **newval, void **extra, GucSource source)
{
	char	   *copy;
	char	   *tok;
	char	   *save;
	DenyList   *list;

	if (*newval == NULL)
		return false;
	/* at most one network per two characters */
	list = malloc(offsetof(DenyList, nets) +
				  sizeof(DeniedNetwork) * (strlen(*newval) / 2 + 1));
	copy = strdup(*newval);
	if (list == NULL || copy == NULL)
	{
		free(list);
		free(copy);
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errmsg("out of memory");
		return false;
	}
	memset(list, 0, offsetof(DenyList, nets));
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save))
	{
		DeniedNetwork *net = &list->nets[list->n];
		char	   *entry = pstrdup(tok);

		memset(net, 0, sizeof(DeniedNetwork));
		if (!parse_network(tok, net))
		{
			GUC_check_errdetail("\"%s\" is not a network.", entry);
			GUC_check_errhint("List networks as CIDRs separated by commas, such as 169.254.0.0/16,fe80::/10.");
			free(copy);
			free(list);
			return false;
		}
		list->n++;
	}
	free(copy);
	*extra = list;
	return true;
}

/* GUC assign hook: the new list is in force; a different one drops connections */
void
deny_networks_assign(const char *newval, void *extra)
{
	DenyList   *list = (DenyList *) extra;

	if (deny_list == NULL || deny_list->n != list->n ||
		memcmp(deny_list->nets, list->nets, sizeof(DeniedNetwork) * list->n) != 0)
		deny_generation++;
	deny_list = list;
}

uint64
deny_list_generation(void)
{
	return deny_generation;
}

/* Is the address (raw network-order bytes of family) in the deny list? */
static bool
address_denied(int family, const unsigned char *addr)
{
	int			i;

	if (deny_list == NULL)
		return false;
	for (i = 0; i < deny_list->n; i++)
	{
		DeniedNetwork *net = &deny_list->nets[i];
		int			full = net->bits / 8;
		int			rest = net->bits % 8;

		if (net->family != family)
			continue;
		if (memcmp(net->addr, addr, full) != 0)
			continue;
		if (rest == 0 ||
			((net->addr[full] ^ addr[full]) & (0xFF << (8 - rest)) & 0xFF) == 0)
			return true;
	}
	return false;
}

/* 0.0.0.0/8 or ::, which connect to the local host */
static bool
address_unspecified(int family, const unsigned char *addr)
{
	static const unsigned char zeros[16] = {0};

	if (family == AF_INET)
		return addr[0] == 0;
	return memcmp(addr, zeros, sizeof(zeros)) == 0;
}

/*
 * Whether a connection to addr, of family (AF_INET or AF_INET6; any other
 * is not judged here), is refused: an address of the deny list or an
 * unspecified one.  When it is, why (a char[ADDRESS_REFUSAL_LEN]) receives
 * the reason.  An IPv4-mapped IPv6 address is checked as the IPv4 address
 * it is.
 */
bool
address_refused(int family, const struct sockaddr *addr, char *why)
{
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
	const unsigned char *raw = NULL;
	char		text[INET6_ADDRSTRLEN] = "";

	if (family == AF_INET)
		raw = (const unsigned char *) &((const struct sockaddr_in *) addr)->sin_addr;
	else if (family == AF_INET6)
	{
		raw = (const unsigned char *) &((const struct sockaddr_in6 *) addr)->sin6_addr;
		if (memcmp(raw, v4mapped, sizeof(v4mapped)) == 0)
		{
			family = AF_INET;
			raw += sizeof(v4mapped);
		}
	}
	if (raw == NULL)
		return false;

	if (address_unspecified(family, raw))
	{
		inet_ntop(family, raw, text, sizeof(text));
		snprintf(why, ADDRESS_REFUSAL_LEN, "address %s is unspecified, not a destination", text);
		return true;
	}
	if (address_denied(family, raw))
	{
		inet_ntop(family, raw, text, sizeof(text));
		snprintf(why, ADDRESS_REFUSAL_LEN, "address %s is in webhook.deny_networks", text);
		return true;
	}
	return false;
}
