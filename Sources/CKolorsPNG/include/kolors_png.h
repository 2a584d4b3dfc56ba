// PNG reading and writing with text chunks (tEXt / zTXt / iTXt) on libpng's classic API.
// The classic API reports errors with longjmp, which Swift cannot use, so this small C
// target owns the setjmp handling and gives Swift plain status codes and messages.
#ifndef KOLORS_PNG_H
#define KOLORS_PNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { KP_TEXT = 0, KP_ZTXT = 1, KP_ITXT = 2 };

/// One text chunk. `value` bytes are Latin-1 for tEXt/zTXt and UTF-8 for iTXt.
typedef struct {
    const char *key;
    const char *value;
    size_t value_length;
    int kind;
} kp_text_in;

/// Writes an 8-bit RGB (channels 3) or RGBA (channels 4) image with the given text chunks.
/// Returns 0 on success; otherwise writes a message to `err`.
int kp_write(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
             int channels, const kp_text_in *texts, size_t ntexts, char *err, size_t errlen);

typedef struct {
    uint32_t width;
    uint32_t height;
    uint8_t *rgb;        // width * height * 3 bytes (alpha dropped, palette/gray expanded)
    size_t ntext;
    char **keys;         // NUL-terminated
    char **values;       // raw bytes (Latin-1 or UTF-8), NUL-terminated
    size_t *lengths;
    int *kinds;          // KP_TEXT / KP_ZTXT / KP_ITXT
} kp_image;

/// Reads any PNG as 8-bit RGB plus, when `want_text`, every text chunk (before and after the
/// image data). `max_pixels` bounds width*height (0 = no bound). Only regular files are read
/// (never blocking on a FIFO); libpng's memory, each decompressed chunk and the total text
/// are capped (see kolors_png.c), so a small hostile file cannot cost gigabytes.
/// Returns 0 on success.
int kp_read(const char *path, uint64_t max_pixels, int want_text, kp_image *out, char *err, size_t errlen);
/// Reads only the header and the text chunks (no pixel decoding), for gallery indexing.
int kp_read_text(const char *path, kp_image *out, char *err, size_t errlen);
void kp_image_free(kp_image *img);

#ifdef __cplusplus
}
#endif
#endif
