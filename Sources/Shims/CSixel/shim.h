// libsixel (Debian: libsixel-dev).
#ifndef KOLORS_CSIXEL_SHIM_H
#define KOLORS_CSIXEL_SHIM_H
#include <sixel.h>
#endif
