/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *	  The idioms that every file running SQL shares, written once:
 *	  connecting to SPI, checking what a statement returned, plans kept
 *	  for the backend's life, running a
 *	  function in a subtransaction that catches its error, and a C string
 *	  as a text Datum or a null.
 *
 * A kept plan is prepared at its first use, in whatever transaction that
 * is, and kept (SPI_keepplan) until the backend exits; its statement must
 * therefore name only objects that live as long as the extension, schema
 * qualified.  PostgreSQL replans it when what it reads changes.
 *
 * A subtransaction here is how one piece of work may fail alone: the
 * worker recording one attempt, a transform making one body, the capture
 * trigger evaluating one hook's filter.  The error is handed back to the
 * caller, who decides what it costs: the caller's memory context and
 * resource owner are current again either way.
 *
 * IDENTIFICATION
 *	  src/spi_util.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/xact.h"
#include "spi_util.h"
#include "utils/builtins.h"
#include "utils/resowner.h"

/* SPI_connect(), which cannot fail but for a bug: an error then. */
void
spi_connect_checked(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "webhook: SPI_connect failed");
}

/*
 * Check ret, what one of the SPI_execute functions returned while doing
 * what ("claiming deliveries", say): an error unless it is expected and,
 * when one_row, the statement returned exactly one row.  The statements
 * are the extension's own, so either is a bug, or a catalog somebody
 * changed by hand.
 */
void
spi_check(int ret, int expected, bool one_row, const char *what)
{
	if (ret != expected)
		elog(ERROR, "webhook: %s failed: %s", what, SPI_result_code_string(ret));
	if (one_row && SPI_processed != 1)
		elog(ERROR, "webhook: %s returned " UINT64_FORMAT " rows, not one",
			 what, SPI_processed);
}

/*
 * The plan of sql (nargs arguments of types, SPI_prepare_cursor's
 * cursor_options: 0, or CURSOR_OPT_CUSTOM_PLAN to plan it anew with each
 * execution's values), prepared into *plan the first time and kept for
 * the backend's life.  Caller is connected to SPI.
 */
SPIPlanPtr
spi_kept_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types,
			  int cursor_options)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare_cursor(sql, nargs, types, cursor_options);

		if (p == NULL)
			elog(ERROR, "webhook: preparing a statement failed: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "webhook: keeping a statement's plan failed");
		*plan = p;
	}
	return *plan;
}

/*
 * Run fn(arg) in a subtransaction of the current transaction.  When it
 * returns, the subtransaction is released (what fn did stays) if keep, or
 * else rolled back (only what fn left in arg, in memory that outlives the
 * subtransaction, stays).  When it throws, on_error(arg), if given, runs
 * first (for what a rollback does not undo, a timer say), then the
 * subtransaction is rolled back and the error is returned, copied into
 * the caller's memory context; NULL when fn returned.  A cancel is caught
 * too: a caller that must not swallow it rethrows it (ReThrowError).
 * Caller is in a transaction.
 */
ErrorData *
try_in_subtransaction(void (*fn) (void *arg), void (*on_error) (void *arg),
					  void *arg, bool keep)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		if (keep)
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		if (on_error != NULL)
			on_error(arg);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}

/* s as a text Datum, or, when s is NULL, a null one (*isnull set) */
Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}
