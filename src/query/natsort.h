/*
 * natsort.h: natural string order for sort_by_label (natsort.c), internal to src/query.
 */
#ifndef STRATA_QUERY_NATSORT_H
#define STRATA_QUERY_NATSORT_H

#include <stdbool.h>
#include <stddef.h>

/* Whether a precedes b in the natural order Prometheus' sort_by_label uses: both split into runs
 * of digits and of other bytes, digit runs that both fit an int64 compared as numbers, the rest
 * bytewise; of two strings equal up to where one ends, the shorter comes first. */
bool natural_less(const char *a, size_t alen, const char *b, size_t blen);

#endif
