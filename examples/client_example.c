/*
 * client_example.c: push two samples to a running Strata over gRPC and read them back.
 *
 *   build/client_example 127.0.0.1:4317
 */
#include "strata_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    const char *target = argc > 1 ? argv[1] : "127.0.0.1:4317";
    char err[STRATA_ERRMSG_SIZE] = "";
    strata_client *c;
    if (strata_client_open(target, 5000, &c, err)) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    int64_t now = (int64_t)time(NULL) * 1000;
    strata_label labels[] = {{"__name__", "example_temperature_celsius"}, {"room", "kitchen"}};
    strata_sample samples[] = {{now - 15000, 21.5}, {now, 21.75}};
    strata_series s = {labels, 2, samples, 2};
    uint64_t written = 0, rejected = 0;
    if (strata_client_write(c, &s, 1, &written, &rejected, err)) {
        fprintf(stderr, "write: %s\n", err);
        strata_client_close(c);
        return 1;
    }
    printf("written %llu, rejected %llu\n", (unsigned long long)written, (unsigned long long)rejected);
    strata_client_result *r;
    if (strata_client_query(c, "example_temperature_celsius{room=\"kitchen\"}", now, &r, err)) {
        fprintf(stderr, "query: %s\n", err);
        strata_client_close(c);
        return 1;
    }
    for (size_t i = 0; i < r->n_series; i++)
        printf("%s %s=%s -> %g\n", r->result_type, r->series[i].labels[1].name,
               r->series[i].labels[1].value, r->series[i].samples[0].v);
    int ok = r->n_series == 1 && r->series[0].samples[0].v == 21.75;
    strata_client_result_free(r);
    strata_client_close(c);
    return ok ? 0 : 1;
}
