// zlib (Debian: zlib1g-dev): deflate for the kitty graphics protocol's o=z payloads.
#ifndef KOLORS_CZLIB_SHIM_H
#define KOLORS_CZLIB_SHIM_H
#include <zlib.h>
#endif
