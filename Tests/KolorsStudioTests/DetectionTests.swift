import CNcursesw
import Foundation
@testable import KolorsStudio
import KolorsTerminal
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A scripted terminal on a pty: the probe runs on the slave side, the script reads what it
/// asks and answers the way a given terminal does (or not at all).
final class ScriptedTerminal: @unchecked Sendable {
    let master: Int32
    let slave: Int32
    /// What the probe wrote.
    private(set) var received: [UInt8] = []

    init() throws {
        master = posix_openpt(O_RDWR | O_NOCTTY)
        guard master >= 0, grantpt(master) == 0, unlockpt(master) == 0, let name = ptsname(master) else { throw TerminalError("no pty") }
        slave = open(String(cString: name), O_RDWR | O_NOCTTY)
        guard slave >= 0 else { throw TerminalError("cannot open the pty slave") }
        var ws = winsize(ws_row: 40, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0)   // no pixels: the probe asks CSI 16 t
        _ = ioctl(slave, UInt(TIOCSWINSZ), &ws)
        // replies larger than the pty holds must not block the script once the probe stops reading
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
    }

    deinit { close(slave); close(master) }

    /// Runs the probe while `answer` replies to each query it sees (XTVERSION, kitty a=q, 16t, DA1),
    /// the way a terminal processes its input in order.
    func probe(environment: [String: String], timeout: Double = 0.3, tmux: TmuxInfo? = nil,
               answer: @escaping @Sendable (_ query: String) -> String) -> (TerminalCapabilities, Double) {
        let slave = self.slave, master = self.master
        let box = ResultBox()
        let t0 = Date()
        let thread = Thread {
            box.caps = TerminalProbe.query(fd: slave, outFD: slave, timeout: timeout, environment: environment,
                                           tmuxInfo: { _ in tmux })
            box.done = true
        }
        thread.start()
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        var answered = false
        while !box.done {
            var pfd = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 5) > 0 {
                let n = read(master, &buf, buf.count)
                if n > 0 { got += buf[0..<n] }
            }
            // the whole query ends with DA1 and restore-cursor
            if !answered, String(decoding: got, as: UTF8.self).hasSuffix("\u{1B}[c\u{1B}8") {
                answered = true
                let reply = answer(String(decoding: got, as: UTF8.self))
                if !reply.isEmpty { _ = reply.utf8CString.withUnsafeBufferPointer { write(master, $0.baseAddress, $0.count - 1) } }
            }
        }
        received = got
        return (box.caps, Date().timeIntervalSince(t0))
    }

    final class ResultBox: @unchecked Sendable {
        var caps = TerminalCapabilities()
        var done = false
    }
}

/// Replies as real terminals send them (XTVERSION, the kitty answer, DA1), each only to what was asked.
enum TerminalScripts {
    static func reply(xtversion: String?, kitty: Bool, da1: String, cell: (Int, Int)? = (20, 10)) -> @Sendable (String) -> String {
        { q in
            var r = ""
            if q.contains("\u{1B}[>q"), let v = xtversion { r += "\u{1B}P>|\(v)\u{1B}\\" }
            if q.contains("\u{1B}_Gi=31,"), kitty { r += "\u{1B}_Gi=31;OK\u{1B}\\" }
            if q.contains("\u{1B}[16t"), let (h, w) = cell { r += "\u{1B}[6;\(h);\(w)t" }
            if q.contains("\u{1B}[c") { r += da1 }
            return r
        }
    }
    static let kitty = reply(xtversion: "kitty(0.35.2)", kitty: true, da1: "\u{1B}[?62;c")
    static let ghostty = reply(xtversion: "ghostty 1.1.0", kitty: true, da1: "\u{1B}[?62;22;52c")
    static let wezterm = reply(xtversion: "WezTerm 20240203-110809-5046fc22", kitty: true, da1: "\u{1B}[?65;4;6;18;22c")
    static let iterm2 = reply(xtversion: "iTerm2 3.5.0", kitty: false, da1: "\u{1B}[?62;4c")
    static let konsole = reply(xtversion: "Konsole 22.12.3", kitty: true, da1: "\u{1B}[?62;1;4c")
    static let xtermVT340 = reply(xtversion: "XTerm(379)", kitty: false, da1: "\u{1B}[?63;1;2;4;6;9;15;16;22;28c")
    static let xterm = reply(xtversion: "XTerm(379)", kitty: false, da1: "\u{1B}[?63;1;2;6;9;15;16;22;28c")
    /// an old terminal: no XTVERSION, prints nothing for APC, sixel via DA1
    static let mlterm = reply(xtversion: nil, kitty: false, da1: "\u{1B}[?63;1;2;3;4;7;29c")
    static let silent: @Sendable (String) -> String = { _ in "" }
}

@Suite("Preview protocol detection", .serialized)
struct DetectionTests {
    let env = ["TERM": "xterm-256color"]

    func detect(_ script: @escaping @Sendable (String) -> String, env: [String: String]? = nil, tmux: TmuxInfo? = nil,
                timeout: Double = 0.3) throws -> (GraphicsChoice, TerminalCapabilities, String, Double) {
        let t = try ScriptedTerminal()
        let e = env ?? self.env
        let (caps, seconds) = t.probe(environment: e, timeout: timeout, tmux: tmux, answer: script)
        return (TerminalProbe.choose(flag: .auto, environment: e, caps: caps), caps, String(decoding: t.received, as: UTF8.self), seconds)
    }

    @Test("the queries: framed by save/restore cursor, XTVERSION, the kitty query, cell size, DA1 last")
    func queryBytes() throws {
        let (_, _, sent, _) = try detect(TerminalScripts.xterm)
        #expect(sent == "\u{1B}7\u{1B}[>q" + KittyGraphics.query + "\u{1B}[16t\u{1B}[c\u{1B}8")
        // a terminal that would print an unknown APC as text is not sent the kitty query
        let (_, _, linux, _) = try detect(TerminalScripts.xterm, env: ["TERM": "linux"])
        #expect(!linux.contains("\u{1B}_G") && linux.hasSuffix("\u{1B}[c\u{1B}8"))
    }

    @Test("kitty and Ghostty: XTVERSION names them → kitty graphics")
    func kitty() throws {
        for script in [TerminalScripts.kitty, TerminalScripts.ghostty] {
            let (c, caps, _, seconds) = try detect(script)
            #expect(c.mode == .kitty && !c.tmuxPassthrough && !c.kittyPlaceholders, "\(c)")
            #expect(caps.kittyGraphics && caps.answered && caps.cellWidth == 10 && caps.cellHeight == 20)
            #expect(seconds < 0.25, "the DA1 reply ends the wait: \(seconds) s")
        }
    }

    @Test("WezTerm and iTerm2 → iTerm2 inline images (WezTerm's kitty answer notwithstanding)")
    func itermFamily() throws {
        let (w, wc, _, _) = try detect(TerminalScripts.wezterm)
        #expect(w.mode == .iterm && w.reason.contains("WezTerm"), "\(w)")
        #expect(wc.kittyGraphics && wc.sixel)
        let (i, _, _, _) = try detect(TerminalScripts.iterm2)
        #expect(i.mode == .iterm && i.reason.contains("iTerm2"))
    }

    @Test("Konsole answers the kitty query → kitty; xterm -ti vt340 and mlterm → sixel; plain xterm → half blocks")
    func queriesDecide() throws {
        let (k, _, _, _) = try detect(TerminalScripts.konsole)
        #expect(k.mode == .kitty && k.reason.contains("kitty graphics query") && k.reason.contains("Konsole"))
        let (v, vc, _, _) = try detect(TerminalScripts.xtermVT340)
        #expect(v.mode == .sixel && vc.xtversion == "XTerm(379)" && !vc.kittyGraphics)
        let (m, mc, _, _) = try detect(TerminalScripts.mlterm)
        #expect(m.mode == .sixel && mc.xtversion == nil)
        let (x, xc, _, _) = try detect(TerminalScripts.xterm)
        #expect(x.mode == .blocks && xc.answered && !xc.sixel)
    }

    @Test("no reply within the budget: half blocks, after about the budget and not much more")
    func silent() throws {
        let (c, caps, _, seconds) = try detect(TerminalScripts.silent, timeout: 0.25)
        #expect(c.mode == .blocks && !caps.answered && c.reason.contains("no terminal reply"))
        #expect(seconds >= 0.24 && seconds < 1.0, "\(seconds) s")
    }

    @Test("a terminal that floods replies without DA1: the read stops at 4096 bytes or the budget")
    func bounded() throws {
        let flood: @Sendable (String) -> String = { _ in String(repeating: "\u{1B}[0n", count: 3000) }
        let (c, caps, _, seconds) = try detect(flood, timeout: 0.5)
        #expect(c.mode == .blocks && !caps.answered)
        #expect(seconds < 1.2)
        // the reader itself: at most 4096 bytes, however much is waiting and however long the deadline
        let t = try ScriptedTerminal()
        var raw = termios()
        tcgetattr(t.slave, &raw)
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        tcsetattr(t.slave, TCSANOW, &raw)
        let junk = [UInt8](repeating: UInt8(ascii: "x"), count: 3000)
        let t0 = Date()
        final class Got: @unchecked Sendable { var bytes: [UInt8] = []; var done = false }
        let got = Got()
        let slave = t.slave
        Thread { got.bytes = TerminalProbe.readReply(fd: slave, deadline: Date().addingTimeInterval(5)); got.done = true }.start()
        for _ in 0..<4 { _ = write(t.master, junk, junk.count); usleep(20_000) }
        while !got.done && Date().timeIntervalSince(t0) < 6 { usleep(5_000) }
        #expect(got.bytes.count == TerminalProbe.maxReplyBytes, "\(got.bytes.count) bytes read")
        #expect(Date().timeIntervalSince(t0) < 2, "stopped at the cap, not the 5 s deadline")
    }

    @Test("the environment comes first: kitty, Ghostty, iTerm2, WezTerm, VS Code without asking")
    func environment() {
        let none = TerminalCapabilities()
        func mode(_ e: [String: String]) -> PreviewMode { TerminalProbe.choose(flag: .auto, environment: e, caps: none).mode }
        #expect(mode(["KITTY_WINDOW_ID": "1", "TERM": "xterm-256color"]) == .kitty)
        #expect(mode(["TERM": "xterm-kitty"]) == .kitty)
        #expect(mode(["TERM": "xterm-ghostty"]) == .kitty)
        #expect(mode(["GHOSTTY_RESOURCES_DIR": "/usr/share/ghostty"]) == .kitty)
        #expect(mode(["TERM_PROGRAM": "iTerm.app"]) == .iterm)
        #expect(mode(["TERM_PROGRAM": "WezTerm"]) == .iterm)
        #expect(mode(["TERM_PROGRAM": "vscode"]) == .iterm)
        #expect(mode(["TERM": "xterm-256color"]) == .blocks)
        // the flag, then KOLORS_PREVIEW, override everything
        var sixel = TerminalCapabilities(); sixel.sixel = true; sixel.answered = true
        #expect(TerminalProbe.choose(flag: .auto, environment: ["TERM": "xterm-kitty", "KOLORS_PREVIEW": "iterm"], caps: sixel).mode == .iterm)
        #expect(TerminalProbe.choose(flag: .sixel, environment: ["TERM": "xterm-kitty", "KOLORS_PREVIEW": "iterm"], caps: sixel).mode == .sixel)
        #expect(TerminalProbe.choose(flag: .auto, environment: ["KOLORS_PREVIEW": "KITTY"], caps: none).mode == .kitty)
        #expect(TerminalProbe.choose(flag: .auto, environment: [:], caps: sixel).mode == .sixel)
    }

    @Test("inside tmux: the outer terminal decides, through passthrough; kitty via Unicode placeholders from 0.28")
    func tmux() throws {
        let tenv = ["TERM": "tmux-256color", "TMUX": "/tmp/tmux-0/default,1,0", "TERM_PROGRAM": "tmux"]
        let modern = TmuxInfo(version: "3.3a", clientTermName: "xterm-kitty", clientTermType: "kitty(0.35.2)", passthrough: true)
        // tmux answers DA1 itself; the probe asks it nothing else
        let tmuxDA1 = TerminalScripts.reply(xtversion: "tmux 3.3a", kitty: false, da1: "\u{1B}[?1;2c")
        let (k, _, sent, _) = try detect(tmuxDA1, env: tenv, tmux: modern)
        #expect(!sent.contains("\u{1B}[>q") && !sent.contains("\u{1B}_G"), "no queries tmux would answer for itself: \(sent.debugDescription)")
        #expect(k.mode == .kitty && k.tmuxPassthrough && k.kittyPlaceholders && k.label == "kitty·tmux", "\(k)")
        // an old kitty (Debian 12 has 0.26.5): direct placement through passthrough
        var old = modern; old.clientTermType = "kitty(0.26.5)"
        let (o, _, _, _) = try detect(tmuxDA1, env: tenv, tmux: old)
        #expect(o.mode == .kitty && o.tmuxPassthrough && !o.kittyPlaceholders, "\(o)")
        // passthrough off: half blocks, saying why
        var off = modern; off.passthrough = false
        let (b, _, _, _) = try detect(tmuxDA1, env: tenv, tmux: off)
        #expect(b.mode == .blocks && b.reason.contains("allow-passthrough"))
        // WezTerm outside (its TERM_PROGRAM in tmux's global environment)
        let wez = TmuxInfo(version: "3.4", clientTermName: "xterm-256color", clientTermType: "", passthrough: true,
                           globalEnvironment: ["TERM_PROGRAM": "WezTerm"])
        let (w, _, _, _) = try detect(tmuxDA1, env: tenv, tmux: wez)
        #expect(w.mode == .iterm && w.tmuxPassthrough)
        // xterm outside: tmux cannot tell sixel from here → half blocks (forcing sixel still works)
        let xt = TmuxInfo(version: "3.3a", clientTermName: "xterm-256color", clientTermType: "XTerm(379)", passthrough: true)
        let (x, caps, _, _) = try detect(tmuxDA1, env: tenv, tmux: xt)
        #expect(x.mode == .blocks)
        let forced = TerminalProbe.choose(flag: .sixel, environment: tenv, caps: caps)
        #expect(forced.mode == .sixel && forced.tmuxPassthrough)
        // no tmux answer at all
        let (n, _, _, _) = try detect(tmuxDA1, env: tenv, tmux: nil)
        #expect(n.mode == .blocks)
    }

    @Test("tmux's display-message line and kitty versions")
    func parsing() {
        let i = TmuxInfo.parse(display: "3.3a|xterm-kitty|kitty(0.26.5)|1\n")
        #expect(i == TmuxInfo(version: "3.3a", clientTermName: "xterm-kitty", clientTermType: "kitty(0.26.5)", passthrough: true))
        #expect(TmuxInfo.parse(display: "3.3a|||0")?.passthrough == false)
        #expect(TmuxInfo.parse(display: "") == nil)
        #expect(!TerminalProbe.placeholdersWork("kitty(0.26.5)"))
        #expect(TerminalProbe.placeholdersWork("kitty(0.28.0)"))
        #expect(TerminalProbe.placeholdersWork("kitty(1.0)"))
        #expect(TerminalProbe.placeholdersWork("ghostty 1.1.0"))
        #expect(TerminalProbe.placeholdersWork(nil))
    }
}
