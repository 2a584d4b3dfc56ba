// oneDNN (Debian: libdnnl-dev, 2.6), C API.
#ifndef KOLORS_CDNNL_SHIM_H
#define KOLORS_CDNNL_SHIM_H
#include <dnnl.h>
#endif
