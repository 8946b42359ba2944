/*-------------------------------------------------------------------------
 *
 * spi_util.h
 *	  The SQL side's shared idioms (spi_util.c): connecting to SPI,
 *	  checking what a statement returned, plans kept for the backend's
 *	  life, running a function in a subtransaction
 *	  that catches its error, and a C string as a text Datum or a null.
 *
 * IDENTIFICATION
 *	  src/spi_util.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_SPI_UTIL_H
#define WEBHOOK_SPI_UTIL_H

#include "executor/spi.h"

extern void spi_connect_checked(void);
extern void spi_check(int ret, int expected, bool one_row, const char *what);
extern SPIPlanPtr spi_kept_plan(SPIPlanPtr *plan, const char *sql, int nargs,
								Oid *types, int cursor_options);
extern ErrorData *try_in_subtransaction(void (*fn) (void *arg),
										void (*on_error) (void *arg),
										void *arg, bool keep);
extern Datum text_or_null(const char *s, bool *isnull);

#endif							/* WEBHOOK_SPI_UTIL_H */
