// ncursesw (Debian: libncurses-dev) with the wide-character API.
// Swift 6 cannot touch C globals (stdscr, LINES, COLS, …) and does not import
// function-like macros (A_BOLD, COLOR_PAIR, ACS_*): small inline wrappers expose them.
#ifndef KOLORS_CNCURSESW_SHIM_H
#define KOLORS_CNCURSESW_SHIM_H
#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#include <locale.h>
#include <langinfo.h>
#include <string.h>
#include <wchar.h>
#include <ncursesw/ncurses.h>
#include <ncursesw/term.h>

static inline WINDOW *kc_stdscr(void) { return stdscr; }
static inline WINDOW *kc_curscr(void) { return curscr; }
static inline int kc_lines(void) { return LINES; }
static inline int kc_cols(void) { return COLS; }
static inline int kc_colors(void) { return COLORS; }
static inline int kc_color_pairs(void) { return COLOR_PAIRS; }

static inline attr_t kc_a_normal(void) { return A_NORMAL; }
static inline attr_t kc_a_bold(void) { return A_BOLD; }
static inline attr_t kc_a_dim(void) { return A_DIM; }
static inline attr_t kc_a_reverse(void) { return A_REVERSE; }
static inline attr_t kc_a_underline(void) { return A_UNDERLINE; }
static inline attr_t kc_a_standout(void) { return A_STANDOUT; }
static inline attr_t kc_a_italic(void) { return A_ITALIC; }
static inline attr_t kc_color_pair(int n) { return COLOR_PAIR(n); }

static inline int kc_key_f(int n) { return KEY_F(n); }
static inline int kc_key_resize(void) { return KEY_RESIZE; }
static inline int kc_key_btab(void) { return KEY_BTAB; }

/// setlocale(LC_ALL, "") so that ncursesw handles UTF-8; when the environment names no UTF-8
/// locale (LANG unset over SSH, say) fall back to C.UTF-8 for character classes and widths.
static inline void kc_setlocale_from_env(void) {
    setlocale(LC_ALL, "");
    const char *cs = nl_langinfo(CODESET);
    if (!cs || (strcmp(cs, "UTF-8") != 0 && strcmp(cs, "utf8") != 0)) setlocale(LC_CTYPE, "C.UTF-8");
}

/// Adds one wide character with attributes and colour pair (wide cells handled by ncurses).
static inline int kc_mvadd_wch(WINDOW *w, int y, int x, wchar_t ch, attr_t attrs, short pair) {
    cchar_t c;
    wchar_t s[2] = { ch, 0 };
    setcchar(&c, s, attrs, pair, NULL);
    return mvwadd_wch(w, y, x, &c);
}

/// Draws a UTF-32 string with attributes and colour pair at (y, x); returns ERR/OK.
static inline int kc_mvaddwstr_attr(WINDOW *w, int y, int x, const wchar_t *s, attr_t attrs, short pair) {
    wattr_set(w, attrs, pair, NULL);
    int rc = mvwaddwstr(w, y, x, s);
    wattr_set(w, A_NORMAL, 0, NULL);
    return rc;
}

// Pseudo-terminal functions (glibc hides them behind _XOPEN_SOURCE, which the Swift Glibc
// module is not built with); declared here for tests that drive ncurses on a pty.
int posix_openpt(int flags);
int grantpt(int fd);
int unlockpt(int fd);
char *ptsname(int fd);

/// Frees the terminal structure a bare setupterm() allocated.
static inline void kc_del_cur_term(void) { if (cur_term) { del_curterm(cur_term); cur_term = NULL; } }

static inline int kc_wattr_set(WINDOW *w, attr_t attrs, short pair) { return wattr_set(w, attrs, pair, NULL); }
#endif
