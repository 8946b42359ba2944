/*-------------------------------------------------------------------------
 *
 * address.h
 *	  Address policy: webhook.deny_networks and the unspecified addresses
 *	  (address.c).
 *
 * IDENTIFICATION
 *	  src/address.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_ADDRESS_H
#define WEBHOOK_ADDRESS_H

#include <curl/curl.h>

#include "utils/guc.h"

extern bool deny_networks_check(char **newval, void **extra, GucSource source);
extern void deny_networks_assign(const char *newval, void *extra);
extern uint64 deny_list_generation(void);
extern void address_policy_apply(CURL *easy, char *why);

#endif							/* WEBHOOK_ADDRESS_H */
