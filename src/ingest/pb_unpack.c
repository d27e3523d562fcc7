/*
 * pb_unpack.c: protobuf-c's generic unpacker with the two things it lacks for hostile input: a
 * memory budget and a reason when it fails.
 *
 * protobuf-c allocates one struct per sub-message, so a body of empty sub-messages (two bytes
 * each) expands about fifty-fold; every allocation here comes from an arena capped by the OTLP
 * budget (1 MiB plus 32 bytes per body byte), and going past it is STRATA_ELIMIT (HTTP 413,
 * RESOURCE_EXHAUSTED) instead of gigabytes of memory. When unpacking fails, the body is walked
 * against the message's descriptors (otlp.c's pre-scan, which bounds nesting at OTLP_MAX_DEPTH)
 * to name the field, byte offset and problem: wrong wire type, truncation, a length running past
 * its message. The walk runs only on failure, so accepted input is exactly what protobuf-c
 * accepts.
 */
#include "ingest/ingest_internal.h"

#include <protobuf-c/protobuf-c.h>
#include <string.h>

static void *budget_alloc(void *data, size_t size)
{
    return otlp_budget_alloc(data, size);
}

static void budget_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* everything goes with the arena */
}

int ingest_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *pb, size_t len, arena *a,
                     void **out, char *err)
{
    *out = NULL;
    otlp_budget budget;
    otlp_budget_init(&budget, a, len);
    ProtobufCAllocator al = {.alloc = budget_alloc, .free = budget_free, .allocator_data = &budget};
    static const uint8_t empty[1]; /* protobuf-c wants a pointer even for 0 bytes */
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &al, len, len ? pb : empty);
    if (m) {
        *out = m;
        return 0;
    }
    if (budget.exceeded) return otlp_budget_error(&budget, err);
    char why[STRATA_ERRMSG_SIZE] = "";
    int rc = ingest_pb_check(pb, len, d, why);
    if (rc == 0) /* the walk found nothing: not a wire-format problem */
        return strata_errf(err, STRATA_EINVAL, "protobuf: cannot decode %s", d->name);
    const char *reason = why;
    if (strncmp(reason, "protobuf: ", 10) == 0) reason += 10;
    return strata_errf(err, STRATA_EINVAL, "protobuf: cannot decode %s: %s", d->name, reason);
}
