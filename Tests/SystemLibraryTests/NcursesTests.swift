import CNcursesw
import Glibc
import KolorsTerminal
import Testing

/// A pseudo terminal pair for driving ncurses without a real terminal.
final class PseudoTerminal {
    let master: Int32
    let slave: Int32

    init(rows: UInt16 = 24, cols: UInt16 = 80) throws {
        master = posix_openpt(O_RDWR | O_NOCTTY)
        guard master >= 0, grantpt(master) == 0, unlockpt(master) == 0, let name = ptsname(master) else {
            throw TerminalError("cannot open a pseudo terminal")
        }
        slave = open(name, O_RDWR | O_NOCTTY)
        guard slave >= 0 else { throw TerminalError("cannot open the pty slave") }
        var ws = winsize(ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(slave, UInt(TIOCSWINSZ), &ws)
        let flags = fcntl(master, F_GETFL)
        _ = fcntl(master, F_SETFL, flags | O_NONBLOCK)
    }

    /// Everything written to the terminal so far.
    func drain() -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(master, &buf, buf.count)
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    deinit {
        close(slave)
        close(master)
    }
}

@Suite("ncursesw", .serialized)
struct NcursesTests {
    @Test("ncurses starts on a pseudo terminal, draws wide text, and stops with the terminal restored")
    func startStopRestores() throws {
        let pty = try PseudoTerminal()
        var before = termios()
        #expect(tcgetattr(pty.slave, &before) == 0)
        #expect(before.c_lflag & tcflag_t(ICANON) != 0)

        let screen = try CursesScreen(term: "xterm-256color", inputFD: pty.slave, outputFD: pty.slave)
        #expect(screen.lines == 24 && screen.columns == 80)
        var during = termios()
        _ = tcgetattr(pty.slave, &during)
        #expect(during.c_lflag & tcflag_t(ICANON) == 0, "cbreak mode while running")
        #expect(during.c_lflag & tcflag_t(ECHO) == 0, "no echo while running")

        let text = Array("Kolors 可图 ✓".unicodeScalars.map { wchar_t(bitPattern: $0.value) }) + [0]
        _ = text.withUnsafeBufferPointer { kc_mvaddwstr_attr(kc_stdscr(), 2, 3, $0.baseAddress, kc_a_bold(), 0) }
        // "Kolors " is 7 cells, the two CJK characters 2 cells each, " ✓" 2 cells: 13 in all
        var y: Int32 = 0, x: Int32 = 0
        y = getcury(kc_stdscr()); x = getcurx(kc_stdscr())
        #expect(y == 2 && x == 3 + 13)
        _ = refresh()
        screen.stop()

        var after = termios()
        _ = tcgetattr(pty.slave, &after)
        #expect(after.c_lflag == before.c_lflag, "local modes restored")
        #expect(after.c_iflag == before.c_iflag, "input modes restored")
        #expect(after.c_oflag == before.c_oflag, "output modes restored")

        let output = String(decoding: pty.drain(), as: UTF8.self)
        #expect(output.contains("\u{1B}[?1049h"), "entered the alternate screen")
        #expect(output.contains("\u{1B}[?1049l"), "left the alternate screen")
        #expect(output.contains("可图"))
    }

    @Test("an unknown TERM gives a clear message instead of exiting")
    func unknownTerm() {
        let problem = CursesScreen.probe(term: "no-such-terminal-kolors")
        #expect(problem?.contains("no-such-terminal-kolors") == true)
        #expect(CursesScreen.probe(term: nil)?.contains("TERM is not set") == true)
        #expect(CursesScreen.probe(term: "xterm-256color") == nil)
    }
}
