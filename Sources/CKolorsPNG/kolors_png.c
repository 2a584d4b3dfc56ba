// PNG I/O with text chunks; see include/kolors_png.h.
#include "kolors_png.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Limits for reading PNGs we did not write. A few kB of file can declare a 2 GB text chunk
// or hold zTXt chunks that inflate to gigabytes; these keep a hostile file to a bounded cost.
enum {
    // Everything libpng itself allocates while reading (chunk buffers, inflated text, rows):
    // its allocator refuses beyond this, and libpng then drops the chunk (a warning) or fails.
    KP_LIBPNG_BUDGET = 64 << 20,
    // One decompressed ancillary chunk (ComfyUI workflows, the largest text we know, are
    // well under 1 MB).
    KP_CHUNK_MAX = 4 << 20,
    // Ancillary chunks kept; later ones are skipped without being inflated.
    KP_CHUNK_CACHE_MAX = 64,
    // Text handed back to the caller, all chunks together; later chunks are dropped.
    KP_TEXT_BUDGET = 16 << 20,
};

typedef struct {
    jmp_buf jmp;
    char *err;
    size_t errlen;
    size_t live;    // bytes libpng holds through kp_malloc
} kp_ctx;

// libpng's allocator for reads: counts live bytes and refuses past KP_LIBPNG_BUDGET. Each
// block carries its size in front (16 bytes, keeping malloc's alignment).
static png_voidp kp_malloc(png_structp png, png_alloc_size_t size) {
    kp_ctx *ctx = (kp_ctx *)png_get_mem_ptr(png);
    if (size > KP_LIBPNG_BUDGET || ctx->live + size > KP_LIBPNG_BUDGET) return NULL;
    unsigned char *block = (unsigned char *)malloc(size + 16);
    if (!block) return NULL;
    memcpy(block, &size, sizeof size);
    ctx->live += size;
    return block + 16;
}

static void kp_free(png_structp png, png_voidp ptr) {
    if (!ptr) return;
    kp_ctx *ctx = (kp_ctx *)png_get_mem_ptr(png);
    unsigned char *block = (unsigned char *)ptr - 16;
    png_alloc_size_t size;
    memcpy(&size, block, sizeof size);
    ctx->live -= size;
    free(block);
}

static void kp_error_fn(png_structp png, png_const_charp msg) {
    kp_ctx *ctx = (kp_ctx *)png_get_error_ptr(png);
    if (ctx && ctx->err && ctx->errlen) snprintf(ctx->err, ctx->errlen, "%s", msg);
    longjmp(ctx->jmp, 1);
}

static void kp_warning_fn(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;  // warnings (e.g. unknown chunks) are not errors for us
}

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

int kp_write(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
             int channels, const kp_text_in *texts, size_t ntexts, char *err, size_t errlen) {
    if (channels != 3 && channels != 4) { set_err(err, errlen, "channels must be 3 or 4"); return 1; }
    if (width == 0 || height == 0) { set_err(err, errlen, "empty image"); return 1; }
    FILE *fp = fopen(path, "wb");
    if (!fp) { set_err(err, errlen, "cannot open file for writing"); return 1; }

    kp_ctx ctx;
    ctx.err = err;
    ctx.errlen = errlen;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, kp_error_fn, kp_warning_fn);
    if (!png) { fclose(fp); set_err(err, errlen, "png_create_write_struct failed"); return 1; }
    png_infop info = png_create_info_struct(png);
    png_textp volatile ptexts = NULL;    // volatile: assigned after setjmp
    png_bytep *volatile rows = NULL;
    if (!info) { png_destroy_write_struct(&png, NULL); fclose(fp); set_err(err, errlen, "out of memory"); return 1; }

    if (setjmp(ctx.jmp)) {
        png_destroy_write_struct(&png, &info);
        free((void *)ptexts);
        free((void *)rows);
        fclose(fp);
        return 1;
    }

    png_init_io(png, fp);
    png_set_IHDR(png, info, width, height, 8,
                 channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (ntexts > 0) {
        ptexts = (png_textp)calloc(ntexts, sizeof(png_text));
        if (!ptexts) png_error(png, "out of memory");
        for (size_t i = 0; i < ntexts; i++) {
            ptexts[i].key = (png_charp)texts[i].key;
            ptexts[i].text = (png_charp)texts[i].value;
            switch (texts[i].kind) {
            case KP_ITXT:
                ptexts[i].compression = PNG_ITXT_COMPRESSION_NONE;
                ptexts[i].itxt_length = texts[i].value_length;
                ptexts[i].lang = NULL;
                ptexts[i].lang_key = NULL;
                break;
            case KP_ZTXT:
                ptexts[i].compression = PNG_TEXT_COMPRESSION_zTXt;
                ptexts[i].text_length = texts[i].value_length;
                break;
            default:
                ptexts[i].compression = PNG_TEXT_COMPRESSION_NONE;
                ptexts[i].text_length = texts[i].value_length;
                break;
            }
        }
        png_set_text(png, info, ptexts, (int)ntexts);
    }
    png_write_info(png, info);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (!rows) png_error(png, "out of memory");
    for (uint32_t y = 0; y < height; y++) rows[y] = (png_bytep)(pixels + (size_t)y * width * channels);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free((void *)ptexts);
    free((void *)rows);
    if (fclose(fp) != 0) { set_err(err, errlen, "error closing file"); return 1; }
    return 0;
}

static int collect_text(png_structp png, png_infop info, kp_image *out, size_t *budget) {
    png_textp text = NULL;
    int n = png_get_text(png, info, &text, NULL);
    if (n <= 0) return 0;
    size_t total = out->ntext + (size_t)n;
    char **keys = (char **)realloc(out->keys, total * sizeof(char *));
    if (!keys) return -1;
    out->keys = keys;
    char **values = (char **)realloc(out->values, total * sizeof(char *));
    if (!values) return -1;
    out->values = values;
    size_t *lengths = (size_t *)realloc(out->lengths, total * sizeof(size_t));
    if (!lengths) return -1;
    out->lengths = lengths;
    int *kinds = (int *)realloc(out->kinds, total * sizeof(int));
    if (!kinds) return -1;
    out->kinds = kinds;
    for (int i = 0; i < n; i++) {
        size_t len = text[i].compression >= PNG_ITXT_COMPRESSION_NONE ? text[i].itxt_length : text[i].text_length;
        if (text[i].text == NULL) len = 0;
        if (len > *budget) continue;  // over the total text budget: dropped
        *budget -= len;
        char *v = (char *)malloc(len + 1);
        char *k = strdup(text[i].key ? text[i].key : "");
        if (!v || !k) { free(v); free(k); return -1; }
        if (len) memcpy(v, text[i].text, len);
        v[len] = 0;
        size_t idx = out->ntext++;
        out->keys[idx] = k;
        out->values[idx] = v;
        out->lengths[idx] = len;
        out->kinds[idx] = text[i].compression >= PNG_ITXT_COMPRESSION_NONE ? KP_ITXT
                        : (text[i].compression == PNG_TEXT_COMPRESSION_zTXt ? KP_ZTXT : KP_TEXT);
    }
    return 0;
}

void kp_image_free(kp_image *img) {
    if (!img) return;
    free(img->rgb);
    for (size_t i = 0; i < img->ntext; i++) {
        free(img->keys[i]);
        free(img->values[i]);
    }
    free(img->keys);
    free(img->values);
    free(img->lengths);
    free(img->kinds);
    memset(img, 0, sizeof(*img));
}

// Opens `path` for reading without blocking (a FIFO in place of the file would block fopen
// for ever) and accepts only regular files.
static FILE *open_regular(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, errno == ENOENT ? "no such file" : "cannot open file");
        return NULL;
    }
    struct stat st = {0};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        set_err(err, errlen, S_ISDIR(st.st_mode) ? "is a folder, not a PNG file" : "not a regular file");
        return NULL;
    }
    FILE *fp = fdopen(fd, "rb");
    if (!fp) { close(fd); set_err(err, errlen, "cannot open file"); }
    return fp;
}

static int kp_read_impl(const char *path, uint64_t max_pixels, int pixels_wanted, int text_wanted, kp_image *out,
                        char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    FILE *fp = open_regular(path, err, errlen);
    if (!fp) return 1;
    unsigned char sig[8];
    if (fread(sig, 1, 8, fp) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(fp);
        set_err(err, errlen, "not a PNG file");
        return 1;
    }
    kp_ctx ctx;
    ctx.err = err;
    ctx.errlen = errlen;
    ctx.live = 0;
    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &ctx, kp_error_fn, kp_warning_fn,
                                               &ctx, kp_malloc, kp_free);
    if (!png) { fclose(fp); set_err(err, errlen, "png_create_read_struct failed"); return 1; }
    png_infop info = png_create_info_struct(png);
    png_infop end_info = png_create_info_struct(png);
    png_bytep *volatile rows = NULL;    // volatile: assigned after setjmp
    if (!info || !end_info) {
        png_destroy_read_struct(&png, &info, &end_info);
        fclose(fp);
        set_err(err, errlen, "out of memory");
        return 1;
    }
    if (setjmp(ctx.jmp)) {
        png_destroy_read_struct(&png, &info, &end_info);
        free((void *)rows);
        fclose(fp);
        kp_image_free(out);
        return 1;
    }
    png_init_io(png, fp);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, 1u << 20, 1u << 20);
    png_set_chunk_malloc_max(png, KP_CHUNK_MAX);
    png_set_chunk_cache_max(png, KP_CHUNK_CACHE_MAX);
    png_set_benign_errors(png, 1);  // a damaged or oversized ancillary chunk is dropped, not fatal
    // Skip every ancillary chunk we do not use (ICC profiles, EXIF …: more inflating for
    // nothing; libpng always processes IHDR, PLTE, tRNS, IDAT and IEND), and the text chunks
    // too when only pixels are wanted.
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    static const png_byte texts[] = "tEXt\0zTXt\0iTXt";
    if (text_wanted) png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_AS_DEFAULT, texts, 3);
    size_t text_budget = KP_TEXT_BUDGET;
    png_read_info(png, info);
    out->width = png_get_image_width(png, info);
    out->height = png_get_image_height(png, info);
    if (text_wanted && collect_text(png, info, out, &text_budget) != 0) png_error(png, "out of memory");
    if (!pixels_wanted) {
        png_destroy_read_struct(&png, &info, &end_info);
        fclose(fp);
        return 0;
    }
    if (max_pixels && (uint64_t)out->width * (uint64_t)out->height > max_pixels) {
        char msg[160];
        snprintf(msg, sizeof msg, "image is %ux%u, more than the %llu pixels allowed", out->width, out->height,
                 (unsigned long long)max_pixels);
        png_error(png, msg);
    }

    png_byte color = png_get_color_type(png, info);
    png_byte depth = png_get_bit_depth(png, info);
    if (depth == 16) png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)out->width * 3) png_error(png, "unexpected row layout after transforms");
    out->rgb = (uint8_t *)malloc(rowbytes * out->height);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * out->height);
    if (!out->rgb || !rows) png_error(png, "out of memory");
    for (uint32_t y = 0; y < out->height; y++) rows[y] = out->rgb + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, end_info);
    if (text_wanted && collect_text(png, end_info, out, &text_budget) != 0) png_error(png, "out of memory");
    png_destroy_read_struct(&png, &info, &end_info);
    free((void *)rows);
    fclose(fp);
    return 0;
}

int kp_read(const char *path, uint64_t max_pixels, int want_text, kp_image *out, char *err, size_t errlen) {
    return kp_read_impl(path, max_pixels, 1, want_text, out, err, errlen);
}

int kp_read_text(const char *path, kp_image *out, char *err, size_t errlen) {
    return kp_read_impl(path, 0, 0, 1, out, err, errlen);
}
