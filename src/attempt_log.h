/*-------------------------------------------------------------------------
 *
 * attempt_log.h
 *	  Appending first attempts that succeeded to the attempt log
 *	  (attempt_log.c).
 *
 * IDENTIFICATION
 *	  src/attempt_log.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_ATTEMPT_LOG_H
#define WEBHOOK_ATTEMPT_LOG_H

#include "attempt.h"

extern bool attempt_log_append(Attempt **reqs, int n, const bool *keep, int slot);

#endif							/* WEBHOOK_ATTEMPT_LOG_H */
