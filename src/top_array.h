/*-------------------------------------------------------------------------
 *
 * top_array.h
 *	  Arrays that grow in TopMemoryContext (top_array.c).
 *
 * IDENTIFICATION
 *	  src/top_array.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_TOP_ARRAY_H
#define WEBHOOK_TOP_ARRAY_H

extern void *top_array_room(void *array, int n, int *max, Size elem_size);

#endif							/* WEBHOOK_TOP_ARRAY_H */
