/*
 * codec.c: the table of chunk codecs, keyed by the encoding id stored beside every chunk. Readers
 * (block reader, remote read, tools) look a codec up here instead of switching on the id, so a
 * new encoding is one new entry, as RedisTimeSeries does with its chunk-kind tables.
 */
#include "encoding/encoding_internal.h"

#include <string.h>

static const chunk_codec *const codecs[] = {
    &chunk_codec_xor,
    &chunk_codec_histogram,
    &chunk_codec_float_histogram,
};

const chunk_codec *chunk_codec_get(chunk_encoding id)
{
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (codecs[i]->id == id) return codecs[i];
    return NULL;
}

const chunk_codec *chunk_codec_by_name(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (strcmp(codecs[i]->name, name) == 0) return codecs[i];
    return NULL;
}
