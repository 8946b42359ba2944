/*-------------------------------------------------------------------------
 *
 * address.h
 *	  Address policy: webhook.deny_networks and the unspecified addresses
 *	  (address.c).  No curl here: http.c asks address_refused() from its
 *	  open-socket callback.
 *
 * IDENTIFICATION
 *	  src/address.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_ADDRESS_H
#define WEBHOOK_ADDRESS_H

#include <sys/socket.h>

#include "utils/guc.h"

/* room for "address <IPv6> is in webhook.deny_networks" */
#define ADDRESS_REFUSAL_LEN 128

extern bool deny_networks_check(char **newval, void **extra, GucSource source);
extern void deny_networks_assign(const char *newval, void *extra);
extern uint64 deny_list_generation(void);
extern bool address_refused(int family, const struct sockaddr *addr,
							char *why);

#endif							/* WEBHOOK_ADDRESS_H */
