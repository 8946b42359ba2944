/*-------------------------------------------------------------------------
 *
 * top_array.c
 *	  The arrays a process keeps for its life (the launcher's databases and
 *	  workers, a worker's sockets, connection caches, loads and hook
 *	  floors), grown in TopMemoryContext in one way, written once.
 *
 * Such an array is a pointer, NULL until its first element, with a count
 * of the elements it holds and one of those it has room for.  Before it
 * appends, its owner asks top_array_room for room for one more; the array
 * doubles when full, so appending n elements copies O(n) of them.
 *
 * IDENTIFICATION
 *	  src/top_array.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "top_array.h"
#include "utils/memutils.h"

/* the room an array has at first, in elements */
#define TOP_ARRAY_FIRST 16

/*
 * Room for one element more in array, of elements of elem_size bytes, which
 * holds n and has room for *max (NULL and 0 before the first): returns array
 * as it is when n < *max, or else moved to TopMemoryContext with room for
 * twice as many (TOP_ARRAY_FIRST at first), *max set to that.
 */
void *
top_array_room(void *array, int n, int *max, Size elem_size)
{
	Assert(n <= *max);
	if (n < *max)
		return array;
	*max = Max(TOP_ARRAY_FIRST, *max * 2);
	if (array == NULL)
		return MemoryContextAlloc(TopMemoryContext, elem_size * *max);
	return repalloc(array, elem_size * *max);
}
