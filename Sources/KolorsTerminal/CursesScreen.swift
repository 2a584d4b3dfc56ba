import CNcursesw
#if canImport(Glibc)
import Glibc
#endif

public struct TerminalError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An ncurses screen on a pair of file descriptors (normally the process's own terminal).
///
/// ncurses' `initscr()` calls `exit(1)` when `TERM` is missing or unknown; this type probes the
/// terminal description with `setupterm` first and throws a readable error instead. It saves the
/// terminal modes before starting and puts them back in `stop()`, whatever state ncurses left.
public final class CursesScreen {
    public let term: String
    private let inputFD: Int32
    private let outputFD: Int32
    private var screen: OpaquePointer?
    private var inFile: UnsafeMutablePointer<FILE>?
    private var outFile: UnsafeMutablePointer<FILE>?
    private var savedModes = termios()
    private var hasSavedModes = false
    public private(set) var isActive = false

    /// Checks that `term` names a terminal description ncurses can load, with cursor addressing.
    public static func probe(term: String?, outputFD: Int32 = 1) -> String? {
        guard let term, !term.isEmpty else {
            return "TERM is not set: run the studio in a terminal (for example TERM=xterm-256color)"
        }
        var err: Int32 = 0
        let rc = setupterm(term, outputFD, &err)
        if rc != 0 /* OK */ {
            switch err {
            case 0: return "TERM=\(term) is not a terminal type this system knows (install ncurses-term or set TERM=xterm-256color)"
            case -1: return "the terminfo database could not be found for TERM=\(term)"
            default: return "TERM=\(term) describes a hardcopy terminal; a screen terminal is needed"
            }
        }
        // a full-screen program needs cursor addressing (TERM=dumb has none: the screen would stay blank)
        let addressable = kc_has_cursor_addressing() != 0
        // setupterm allocated a terminal structure; release it, newterm makes its own.
        kc_del_cur_term()
        if !addressable {
            return "TERM=\(term) cannot move the cursor; the studio needs a screen terminal (for example TERM=xterm-256color)"
        }
        return nil
    }

    /// Starts ncurses on the given descriptors (default: stdin/stdout).
    public init(term: String? = nil, inputFD: Int32 = 0, outputFD: Int32 = 1) throws {
        let name = term ?? (getenv("TERM").map { String(cString: $0) } ?? "")
        if let problem = CursesScreen.probe(term: name, outputFD: outputFD) {
            throw TerminalError(problem)
        }
        guard isatty(inputFD) == 1 else { throw TerminalError("standard input is not a terminal") }
        self.term = name
        self.inputFD = inputFD
        self.outputFD = outputFD
        if tcgetattr(inputFD, &savedModes) == 0 { hasSavedModes = true }
        kc_setlocale_from_env()
        guard let inF = fdopen(dup(inputFD), "r"), let outF = fdopen(dup(outputFD), "w") else {
            throw TerminalError("cannot open the terminal streams")
        }
        inFile = inF
        outFile = outF
        guard let scr = newterm(name, outF, inF) else {
            fclose(inF); fclose(outF)
            throw TerminalError("ncurses could not start on TERM=\(name)")
        }
        screen = scr
        _ = set_term(scr)
        isActive = true
        _ = cbreak()
        _ = noecho()
        _ = nonl()
        _ = keypad(kc_stdscr(), true)
        _ = curs_set(0)
    }

    public var lines: Int { Int(kc_lines()) }
    public var columns: Int { Int(kc_cols()) }

    /// Ends ncurses and restores the saved terminal modes. Safe to call more than once.
    public func stop() {
        guard isActive else { return }
        isActive = false
        _ = endwin()
        if let outFile { fflush(outFile) }
        if let screen { delscreen(screen) }
        screen = nil
        if hasSavedModes { _ = tcsetattr(inputFD, TCSAFLUSH, &savedModes) }
        if let inFile { fclose(inFile) }
        if let outFile { fclose(outFile) }
        inFile = nil
        outFile = nil
    }

    deinit { stop() }
}
