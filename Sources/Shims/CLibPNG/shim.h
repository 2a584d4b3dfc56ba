// libpng 1.6 (Debian: libpng-dev). Swift uses the simplified API (no setjmp);
// text chunks go through the CKolorsPNG C target, which owns the setjmp handling.
#ifndef KOLORS_CLIBPNG_SHIM_H
#define KOLORS_CLIBPNG_SHIM_H
#include <png.h>
#endif
