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
#include <sys/ioctl.h>
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

// ---- used by the studio ---------------------------------------------------------------------
#include <signal.h>
#include <unistd.h>
#include <termios.h>
#include <pthread.h>

/// Adds one grapheme cluster (a spacing character plus up to 4 combining ones) with
/// attributes and an extended colour pair (pairs above 32767 work).
static inline int kc_mvadd_cluster(WINDOW *w, int y, int x, const wchar_t *s, int n, attr_t attrs, int pair) {
    cchar_t c;
    wchar_t buf[CCHARW_MAX + 1];
    int k = n < CCHARW_MAX ? n : CCHARW_MAX;
    for (int i = 0; i < k; i++) buf[i] = s[i];
    buf[k] = 0;
    if (setcchar(&c, buf, attrs, 0, &pair) != OK) return ERR;
    return mvwadd_wch(w, y, x, &c);
}

/// init_extended_pair (colour numbers above 255 for direct-colour terminals).
static inline int kc_init_pair(int pair, int fg, int bg) { return init_extended_pair(pair, fg, bg); }

/// The key code ncurses returns for a terminfo key capability (e.g. "kLFT5"), or 0.
static inline int kc_key_code(const char *cap) {
    char *s = tigetstr(cap);
    if (s == NULL || s == (char *)-1) return 0;
    int k = key_defined(s);
    return k > 0 ? k : 0;
}

static inline int kc_key_code_yes(void) { return KEY_CODE_YES; }

/// Whether the terminal description loaded by `setupterm` can address the cursor (`cup`);
/// `TERM=dumb` and other glass teletypes cannot, and a full-screen program draws nothing there.
static inline int kc_has_cursor_addressing(void) {
    char *s = tigetstr("cup");
    return s != NULL && s != (char *)-1;
}

/// Last-resort terminal restore for crashes (SIGSEGV, SIGILL, SIGABRT, …): leaves the
/// alternate screen, shows the cursor, turns bracketed paste off, puts back the saved tty
/// modes, then lets the previous handler (e.g. Swift's backtracer) run.
// State lives in function-local statics: Swift's importer emits inline functions, not
// header-level static variables.
typedef struct {
    struct termios modes;
    int fd;
    struct sigaction old[32];
} kc_crash_state_t;

static inline kc_crash_state_t *kc_crash_state(void) {
    static kc_crash_state_t state = { .fd = -1 };
    return &state;
}

static void kc_crash_handler(int sig) {
    kc_crash_state_t *st = kc_crash_state();
    if (st->fd >= 0) {
        static const char seq[] = "\033[?2004l\033[0m\033[?25h\033[?1049l\r\n";
        ssize_t r = write(st->fd, seq, sizeof seq - 1);
        (void)r;
        tcsetattr(st->fd, TCSANOW, &st->modes);
    }
    if (sig > 0 && sig < 32) sigaction(sig, &st->old[sig], NULL);
    raise(sig);
}

static inline void kc_install_crash_restore(int fd) {
    kc_crash_state_t *st = kc_crash_state();
    if (tcgetattr(fd, &st->modes) != 0) return;
    st->fd = fd;
    int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP };
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = kc_crash_handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        sigaction(sigs[i], &sa, &st->old[sigs[i]]);
    }
}

static inline void kc_remove_crash_restore(void) {
    kc_crash_state_t *st = kc_crash_state();
    if (st->fd < 0) return;
    int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP };
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &st->old[sigs[i]], NULL);
    st->fd = -1;
}

/// Unblocks the signals the studio relies on (a parent may have started it with them blocked,
/// e.g. from a thread of a program that blocks everything): resize, interrupt, terminate.
static inline void kc_unblock_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = { SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCONT, SIGTSTP };
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&set, sigs[i]);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    signal(SIGWINCH, SIG_DFL);  // ncurses installs its own handler only over the default one
}

/// Stops the process as a terminal's suspend key does (SIGTSTP, default action) and returns once
/// it is continued (`fg`, SIGCONT). The signal's handler (libdispatch's, when a signal source
/// watches it) and this thread's signal mask are put back afterwards. In an orphaned process
/// group the kernel drops the stop and this returns at once.
static inline void kc_stop_self(void) {
    struct sigaction dfl, old;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGTSTP, &dfl, &old);
    sigset_t set, oldmask;
    sigemptyset(&set);
    sigaddset(&set, SIGTSTP);
    pthread_sigmask(SIG_UNBLOCK, &set, &oldmask);
    raise(SIGTSTP);
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    sigaction(SIGTSTP, &old, NULL);
}

/// Lowers the scheduling priority of the calling thread only (Linux threads have their own nice value).
#include <sys/resource.h>
#include <sys/syscall.h>
static inline void kc_nice_this_thread(int inc) {
    long tid = syscall(SYS_gettid);
    int cur = getpriority(PRIO_PROCESS, (id_t)tid);
    setpriority(PRIO_PROCESS, (id_t)tid, cur + inc);
}

/// Terminal size in cells and pixels (pixels may be 0).
static inline int kc_winsize(int fd, int *rows, int *cols, int *xpixel, int *ypixel) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return -1;
    *rows = ws.ws_row; *cols = ws.ws_col; *xpixel = ws.ws_xpixel; *ypixel = ws.ws_ypixel;
    return 0;
}
#endif
