import CNcursesw
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How previews are drawn.
public enum PreviewMode: String, Sendable, CaseIterable {
    case auto, sixel, blocks, none
}

/// What the terminal told us before ncurses started.
public struct TerminalCapabilities: Sendable, Equatable {
    /// DA1 advertised sixel graphics (parameter 4).
    public var sixel = false
    /// The DA1 reply's parameters, when there was a reply.
    public var da1: [Int]?
    /// Cell size in pixels (TIOCGWINSZ, else the `CSI 16 t` reply), when known.
    public var cellWidth: Int?
    public var cellHeight: Int?
    /// Running inside tmux / GNU screen (sixel needs DCS passthrough there).
    public var tmux = false
    public var screen = false

    public init() {}

    /// Parses terminal replies: DA1 `ESC [ ? Pn ; … c` and cell size `ESC [ 6 ; h ; w t`.
    public mutating func parseReplies(_ bytes: [UInt8]) {
        let s = String(decoding: bytes, as: UTF8.self)
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

public enum TerminalProbe {
    /// Asks the terminal (on `fd`, a tty) for its cell size and DA1, waiting at most `timeout`
    /// seconds. Sends `CSI 16 t` first and DA1 last: terminals answer in order and all answer DA1.
    public static func query(fd: Int32 = 0, outFD: Int32 = 1, timeout: Double = 0.3,
                             environment: [String: String] = ProcessInfo.processInfo.environment) -> TerminalCapabilities {
        var caps = TerminalCapabilities()
        caps.tmux = environment["TMUX"] != nil
        caps.screen = environment["STY"] != nil
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
        let query = caps.cellWidth == nil ? "\u{1B}[16t\u{1B}[c" : "\u{1B}[c"
        _ = query.utf8CString.withUnsafeBufferPointer { write(outFD, $0.baseAddress, $0.count - 1) }
        var reply: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var buf = [UInt8](repeating: 0, count: 256)
        while Date() < deadline, !TerminalCapabilities.hasDA1(reply) {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(1, deadline.timeIntervalSinceNow * 1000))
            guard poll(&pfd, 1, ms) > 0 else { break }
            let n = read(fd, &buf, buf.count)
            if n <= 0 { break }
            reply.append(contentsOf: buf[0..<n])
        }
        caps.parseReplies(reply)
        return caps
    }

    /// The preview mode to use: an explicit flag wins, then `KOLORS_PREVIEW`, then detection.
    public static func resolve(flag: PreviewMode, environment: [String: String], caps: TerminalCapabilities?) -> PreviewMode {
        if flag != .auto { return flag }
        if let env = environment["KOLORS_PREVIEW"].flatMap({ PreviewMode(rawValue: $0.lowercased()) }), env != .auto {
            return env
        }
        return caps?.sixel == true ? .sixel : .blocks
    }
}
