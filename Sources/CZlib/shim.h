#ifndef LABNODE_CZLIB_SHIM_H
#define LABNODE_CZLIB_SHIM_H

#include <zlib.h>

/* deflateInit and inflateInit are macros that pass ZLIB_VERSION and the struct size;
   Swift cannot call macros, so these wrappers do it. */
static inline int labnode_deflate_init(z_stream *stream, int level) {
    return deflateInit(stream, level);
}

static inline int labnode_inflate_init(z_stream *stream) {
    return inflateInit(stream);
}

#endif
