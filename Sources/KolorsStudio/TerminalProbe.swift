import CNcursesw
import Foundation
import KolorsTerminal
#if canImport(Glibc)
import Glibc
#endif

/// How previews are drawn: a graphics protocol, half blocks, or not at all.
public enum PreviewMode: String, Sendable, CaseIterable {
    case auto, kitty, iterm, sixel, blocks, none

    /// True for the pixel protocols (kitty graphics, iTerm2 inline images, sixel).
    public var isGraphics: Bool { self == .kitty || self == .iterm || self == .sixel }
}

/// What tmux says about itself and the terminal outside it (`tmux display-message -p`).
public struct TmuxInfo: Sendable, Equatable {
    /// tmux's version, e.g. "3.3a".
    public var version = ""
    /// The outer terminal's TERM (`client_termname`), e.g. "xterm-kitty".
    public var clientTermName = ""
    /// The outer terminal's XTVERSION answer as tmux recorded it (`client_termtype`), e.g. "kitty(0.35.2)".
    public var clientTermType = ""
    /// `allow-passthrough` is on: DCS passthrough reaches the outer terminal.
    public var passthrough = false
    /// TERM / TERM_PROGRAM of tmux's global environment (the terminal tmux was started from).
    public var globalEnvironment: [String: String] = [:]

    public init(version: String = "", clientTermName: String = "", clientTermType: String = "", passthrough: Bool = false,
                globalEnvironment: [String: String] = [:]) {
        self.version = version
        self.clientTermName = clientTermName
        self.clientTermType = clientTermType
        self.passthrough = passthrough
        self.globalEnvironment = globalEnvironment
    }

    /// Parses `version|client_termname|client_termtype|allow-passthrough` (one line).
    public static func parse(display line: String) -> TmuxInfo? {
        let parts = line.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count >= 4, !parts[0].isEmpty else { return nil }
        return TmuxInfo(version: String(parts[0]), clientTermName: String(parts[1]), clientTermType: String(parts[2]),
                        passthrough: parts[3] == "1" || parts[3] == "on" || parts[3] == "all")
    }
}

/// What the terminal told us before ncurses started.
public struct TerminalCapabilities: Sendable, Equatable {
    /// DA1 advertised sixel graphics (parameter 4).
    public var sixel = false
    /// The DA1 reply's parameters, when there was a reply.
    public var da1: [Int]?
    /// The XTVERSION (`CSI > q`) answer: the terminal's name and version, e.g. "kitty(0.26.5)", "WezTerm 20240203".
    public var xtversion: String?
    /// The terminal answered the kitty graphics query (`a=q`) with OK.
    public var kittyGraphics = false
    /// Cell size in pixels (TIOCGWINSZ, else the `CSI 16 t` reply), when known.
    public var cellWidth: Int?
    public var cellHeight: Int?
    /// Running inside tmux / GNU screen (graphics need DCS passthrough there).
    public var tmux = false
    public var screen = false
    /// tmux's view of the outer terminal (inside tmux only, when tmux answered).
    public var tmuxInfo: TmuxInfo?
    /// Milliseconds the probe took, and whether the terminal's DA1 reply ended it (false: the time budget did).
    public var probeMilliseconds = 0
    public var answered = false

    public init() {}

    /// Parses terminal replies: XTVERSION `ESC P > | text ESC \`, the kitty graphics answer
    /// `ESC _ G i=31;OK ESC \`, cell size `ESC [ 6 ; h ; w t` and DA1 `ESC [ ? Pn ; … c`.
    public mutating func parseReplies(_ bytes: [UInt8]) {
        let s = String(decoding: bytes, as: UTF8.self)
        if let r = s.range(of: "\u{1B}P>|"), let end = s[r.upperBound...].range(of: "\u{1B}\\") {
            xtversion = String(s[r.upperBound..<end.lowerBound].prefix(128))
        }
        if KittyGraphics.queryAnswered(bytes) { kittyGraphics = true }
        if let r = s.range(of: "\u{1B}[?"), let end = s[r.upperBound...].firstIndex(of: "c") {
            let params = s[r.upperBound..<end].split(separator: ";").compactMap { Int($0) }
            da1 = params
            sixel = params.dropFirst().contains(4)
        }
        if let r = s.range(of: "\u{1B}[6;"), let end = s[r.upperBound...].firstIndex(of: "t") {
            let p = s[r.upperBound..<end].split(separator: ";").compactMap { Int($0) }
            if p.count == 2, p[0] > 0, p[1] > 0 { cellHeight = p[0]; cellWidth = p[1] }
        }
    }

    /// True when the reply bytes hold a complete DA1 answer (every terminal answers DA1, so it ends the wait).
    public static func hasDA1(_ bytes: [UInt8]) -> Bool {
        let s = String(decoding: bytes, as: UTF8.self)
        guard let r = s.range(of: "\u{1B}[?") else { return false }
        return s[r.upperBound...].contains("c")
    }
}

/// The protocol chosen for previews and how it reaches the terminal.
public struct GraphicsChoice: Sendable, Equatable {
    public var mode: PreviewMode
    /// Wrap graphics in tmux's DCS passthrough (inside tmux).
    public var tmuxPassthrough = false
    /// kitty inside tmux: a virtual placement shown through U+10EEEE placeholder cells drawn as
    /// text, so tmux moves and clips the image with its pane.
    public var kittyPlaceholders = false
    /// Why: what decided it (for the log and `--help`-style diagnostics).
    public var reason: String

    public init(mode: PreviewMode, tmuxPassthrough: Bool = false, kittyPlaceholders: Bool = false, reason: String) {
        self.mode = mode
        self.tmuxPassthrough = tmuxPassthrough
        self.kittyPlaceholders = kittyPlaceholders
        self.reason = reason
    }

    /// The name shown in the preview pane's status line: the protocol, and how it travels.
    public var label: String {
        switch mode {
        case .kitty: kittyPlaceholders ? "kitty·tmux" : tmuxPassthrough ? "kitty·passthrough" : "kitty"
        case .iterm: tmuxPassthrough ? "iterm·passthrough" : "iterm"
        case .sixel: tmuxPassthrough ? "sixel·passthrough" : "sixel"
        default: mode.rawValue
        }
    }
}

public enum TerminalProbe {
    /// Longest reply read from the terminal; anything after it is left alone.
    public static let maxReplyBytes = 4096

    /// Terminals known to print an unknown APC sequence as text: they are not sent the kitty query.
    static func apcUnsafe(term: String) -> Bool {
        term == "linux" || term == "dumb" || term.hasPrefix("vt1") || term.hasPrefix("vt2") || term.hasPrefix("cons")
    }

    /// Asks the terminal (on `fd`, a tty) what it can draw, waiting at most `timeout` seconds:
    /// XTVERSION, the kitty graphics query, the cell size (`CSI 16 t`, when TIOCGWINSZ has no
    /// pixels) and DA1 last, which every terminal answers, so its reply ends the wait at once.
    /// Inside tmux the terminal outside is asked about through tmux itself (`display-message`),
    /// and only DA1 / the cell size go to the pane. The queries are framed by save/restore cursor
    /// and at most `maxReplyBytes` are read.
    public static func query(fd: Int32 = 0, outFD: Int32 = 1, timeout: Double = 0.3,
                             environment: [String: String] = ProcessInfo.processInfo.environment,
                             tmuxInfo: (([String: String]) -> TmuxInfo?)? = nil) -> TerminalCapabilities {
        let started = Date()
        var caps = TerminalCapabilities()
        caps.tmux = environment["TMUX"] != nil
        caps.screen = environment["STY"] != nil
        defer { caps.probeMilliseconds = Int(Date().timeIntervalSince(started) * 1000) }
        if caps.tmux { caps.tmuxInfo = (tmuxInfo ?? queryTmux)(environment) }
        var rows: Int32 = 0, cols: Int32 = 0, xp: Int32 = 0, yp: Int32 = 0
        if kc_winsize(outFD, &rows, &cols, &xp, &yp) == 0, xp > 0, yp > 0, cols > 0, rows > 0 {
            caps.cellWidth = Int(xp / cols)
            caps.cellHeight = Int(yp / rows)
        }
        guard isatty(fd) == 1, isatty(outFD) == 1 else { return caps }
        var saved = termios()
        guard tcgetattr(fd, &saved) == 0 else { return caps }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        _ = tcsetattr(fd, TCSANOW, &raw)
        defer { _ = tcsetattr(fd, TCSANOW, &saved) }
        var query = "\u{1B}7"
        if !caps.tmux && !caps.screen {
            query += "\u{1B}[>q"
            if !apcUnsafe(term: environment["TERM"] ?? "") { query += KittyGraphics.query }
        }
        if caps.cellWidth == nil { query += "\u{1B}[16t" }
        query += "\u{1B}[c\u{1B}8"
        _ = query.utf8CString.withUnsafeBufferPointer { write(outFD, $0.baseAddress, $0.count - 1) }
        let reply = readReply(fd: fd, deadline: Date().addingTimeInterval(timeout))
        caps.answered = TerminalCapabilities.hasDA1(reply)
        caps.parseReplies(reply)
        return caps
    }

    /// Reads terminal replies until a DA1 answer, `maxReplyBytes`, or the deadline.
    static func readReply(fd: Int32, deadline: Date) -> [UInt8] {
        var reply: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 256)
        while Date() < deadline, !TerminalCapabilities.hasDA1(reply), reply.count < maxReplyBytes {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(1, deadline.timeIntervalSinceNow * 1000))
            guard poll(&pfd, 1, ms) > 0 else { break }
            let n = read(fd, &buf, min(buf.count, maxReplyBytes - reply.count))
            if n <= 0 { break }
            reply.append(contentsOf: buf[0..<n])
        }
        return reply
    }

    /// Asks tmux (the server of `$TMUX`) about itself and its client terminal; nil when tmux does
    /// not answer within a second.
    public static func queryTmux(_ environment: [String: String]) -> TmuxInfo? {
        guard let out = runTool(["tmux", "display-message", "-p",
                                 "#{version}|#{client_termname}|#{client_termtype}|#{allow-passthrough}"],
                                environment: environment, timeout: 1),
              var info = TmuxInfo.parse(display: out) else { return nil }
        if let env = runTool(["tmux", "show-environment", "-g"], environment: environment, timeout: 1) {
            for line in env.split(separator: "\n") {
                let kv = line.split(separator: "=", maxSplits: 1)
                if kv.count == 2, ["TERM", "TERM_PROGRAM", "KITTY_WINDOW_ID", "GHOSTTY_RESOURCES_DIR", "WEZTERM_EXECUTABLE",
                                   "ITERM_SESSION_ID", "KONSOLE_VERSION"].contains(String(kv[0])) {
                    info.globalEnvironment[String(kv[0])] = String(kv[1])
                }
            }
        }
        return info
    }

    /// Runs a tool found on PATH with a time limit; its standard output, or nil.
    static func runTool(_ args: [String], environment: [String: String], timeout: Double) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        p.environment = environment
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(2_000) }
        if p.isRunning {
            p.terminate()
            return nil
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        guard p.terminationStatus == 0 else { return nil }
        return String(decoding: data.prefix(65536), as: UTF8.self)
    }

    /// The preview mode to use: an explicit flag wins, then `KOLORS_PREVIEW`, then detection.
    public static func resolve(flag: PreviewMode, environment: [String: String], caps: TerminalCapabilities?) -> PreviewMode {
        choose(flag: flag, environment: environment, caps: caps ?? TerminalCapabilities()).mode
    }

    /// Chooses the protocol: `--preview` (when not auto), then `KOLORS_PREVIEW`, then detection —
    /// the environment first (`KITTY_WINDOW_ID`, `TERM=xterm-kitty|xterm-ghostty`,
    /// `GHOSTTY_RESOURCES_DIR`, `TERM_PROGRAM=iTerm.app|WezTerm|vscode|ghostty`), then the
    /// XTVERSION name, then the kitty query's answer, then DA1's sixel flag, else half blocks.
    /// Inside tmux the terminal outside it decides (tmux's record of its client and global
    /// environment), graphics go through passthrough (refused when `allow-passthrough` is off), and
    /// kitty images are shown through Unicode placeholders (kitty ≥ 0.28, Ghostty).
    public static func choose(flag: PreviewMode, environment env: [String: String], caps: TerminalCapabilities) -> GraphicsChoice {
        let inTmux = caps.tmux || env["TMUX"] != nil
        var forced: (PreviewMode, String)?
        if flag != .auto {
            forced = (flag, "--preview \(flag.rawValue)")
        } else if let raw = env["KOLORS_PREVIEW"], let m = PreviewMode(rawValue: raw.lowercased()), m != .auto {
            forced = (m, "KOLORS_PREVIEW=\(raw)")
        }
        let outer = identify(environment: env, caps: caps)
        if let (mode, why) = forced {
            var c = GraphicsChoice(mode: mode, reason: why)
            if inTmux && mode.isGraphics {
                c.tmuxPassthrough = true
                if mode == .kitty { c.kittyPlaceholders = placeholdersWork(outer?.version ?? outerVersion(caps)) }
            }
            return c
        }
        guard let (mode, why, version) = outer.map({ ($0.mode, $0.reason, $0.version) }) else {
            if !caps.answered && !inTmux {
                return GraphicsChoice(mode: .blocks, reason: "no terminal reply within \(caps.probeMilliseconds) ms: half blocks")
            }
            return GraphicsChoice(mode: .blocks, reason: "no graphics protocol detected" + (inTmux ? " outside tmux" : "") + ": half blocks")
        }
        guard inTmux else { return GraphicsChoice(mode: mode, reason: why) }
        guard let info = caps.tmuxInfo, info.passthrough else {
            return GraphicsChoice(mode: .blocks, reason: "\(why), but tmux passthrough is off (set -g allow-passthrough on): half blocks")
        }
        var c = GraphicsChoice(mode: mode, tmuxPassthrough: true, reason: why + " (outside tmux \(info.version))")
        if mode == .kitty {
            c.kittyPlaceholders = placeholdersWork(version)
            if !c.kittyPlaceholders { c.reason += "; kitty < 0.28 has no Unicode placeholders: direct placement" }
        }
        return c
    }

    /// The terminal (outside tmux, inside it: the outer one) and the protocol it prefers.
    static func identify(environment env: [String: String], caps: TerminalCapabilities)
        -> (mode: PreviewMode, reason: String, version: String?)?
    {
        let inTmux = caps.tmux || env["TMUX"] != nil
        let tmux = caps.tmuxInfo
        // 1. the environment (inside tmux: the pane's inherited variables, tmux's global environment
        //    and its client's TERM)
        var vars = env
        if inTmux {
            vars["TERM"] = tmux?.clientTermName ?? ""
            let global = tmux?.globalEnvironment ?? [:]
            vars["TERM_PROGRAM"] = global["TERM_PROGRAM"] ?? (env["TERM_PROGRAM"] == "tmux" ? nil : env["TERM_PROGRAM"])
            for (k, v) in global where k != "TERM" && k != "TERM_PROGRAM" && vars[k] == nil { vars[k] = v }
            if (vars["TERM"] ?? "").isEmpty, let t = global["TERM"] { vars["TERM"] = t }
        }
        let version = inTmux ? tmux?.clientTermType : caps.xtversion
        let term = vars["TERM"] ?? "", program = vars["TERM_PROGRAM"] ?? ""
        if vars["KITTY_WINDOW_ID"] != nil { return (.kitty, "KITTY_WINDOW_ID is set (kitty)", version) }
        if term == "xterm-kitty" { return (.kitty, "TERM=xterm-kitty", version) }
        if term == "xterm-ghostty" || vars["GHOSTTY_RESOURCES_DIR"] != nil || program == "ghostty" {
            return (.kitty, "Ghostty (\(term == "xterm-ghostty" ? "TERM" : vars["GHOSTTY_RESOURCES_DIR"] != nil ? "GHOSTTY_RESOURCES_DIR" : "TERM_PROGRAM"))", version)
        }
        if ["iTerm.app", "WezTerm", "vscode"].contains(program) { return (.iterm, "TERM_PROGRAM=\(program)", version) }
        // 2. XTVERSION (inside tmux: the answer tmux got from its client)
        if let v = version, !v.isEmpty {
            let lower = v.lowercased()
            if lower.hasPrefix("kitty") || lower.hasPrefix("ghostty") { return (.kitty, "XTVERSION \(v)", v) }
            if lower.hasPrefix("iterm2") || lower.hasPrefix("wezterm") { return (.iterm, "XTVERSION \(v)", v) }
        }
        guard !inTmux else { return nil }    // tmux answers the queries below itself
        // 3. the kitty graphics query, answered before DA1
        if caps.kittyGraphics { return (.kitty, "answered the kitty graphics query" + (caps.xtversion.map { " (\($0))" } ?? ""), version) }
        // 4. DA1's sixel flag
        if caps.sixel { return (.sixel, "DA1 advertises sixel" + (caps.xtversion.map { " (\($0))" } ?? ""), version) }
        return nil
    }

    static func outerVersion(_ caps: TerminalCapabilities) -> String? {
        caps.tmux ? caps.tmuxInfo?.clientTermType : caps.xtversion
    }

    /// kitty draws Unicode placeholders from 0.28 on; Ghostty and unknown versions are assumed to.
    static func placeholdersWork(_ version: String?) -> Bool {
        guard let v = version?.lowercased(), v.hasPrefix("kitty") else { return true }
        let digits = v.drop(while: { !$0.isNumber })
        let parts = digits.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return true }
        return parts[0] > 0 || parts[1] >= 28
    }
}
