import CNcursesw
import Foundation
import KolorsImageIO
import KolorsPipelines
import KolorsTerminal
#if canImport(Glibc)
import Glibc
#endif

/// Images shown inline in a terminal's scrolling text, the way `timg` or `kitten icat` do:
/// the protocol is detected as the studio does it (or forced with `KOLORS_PREVIEW`), the image is
/// fitted to the window, rows are made for it, and the cursor ends below it.
public enum InlineImage {
    /// What was shown: the protocol, the size drawn and the rows taken (for messages and tests).
    public struct Shown: Sendable, Equatable {
        public var mode: PreviewMode
        public var width: Int
        public var height: Int
        public var rows: Int
        public var reason: String
    }

    /// The terminal of `outFD`, probed once per process (replies are read from /dev/tty).
    nonisolated(unsafe) private static var cached: (caps: TerminalCapabilities, choice: GraphicsChoice)?

    /// Shows `image` below the cursor on `outFD` when it is a terminal; nil when it is not, or
    /// previews are off (`KOLORS_PREVIEW=none`).
    @discardableResult
    public static func show(_ image: RGBImage, outFD: Int32, environment: [String: String] = ProcessInfo.processInfo.environment,
                            maxRows: Int? = nil) -> Shown? {
        guard isatty(outFD) == 1, image.width > 0, image.height > 0 else { return nil }
        if let t = environment["TERM"], t == "dumb" || t.isEmpty { return nil }
        let (caps, choice) = cached ?? {
            let tty = open("/dev/tty", O_RDWR | O_NOCTTY)
            defer { if tty >= 0 { close(tty) } }
            let caps = TerminalProbe.query(fd: tty >= 0 ? tty : outFD, outFD: tty >= 0 ? tty : outFD, environment: environment)
            let r = (caps, TerminalProbe.choose(flag: .auto, environment: environment, caps: caps))
            cached = r
            return r
        }()
        guard choice.mode != .none else { return nil }
        var rows: Int32 = 0, cols: Int32 = 0, xp: Int32 = 0, yp: Int32 = 0
        _ = kc_winsize(outFD, &rows, &cols, &xp, &yp)
        let columns = max(8, Int(cols > 0 ? cols : 80)), lines = max(6, Int(rows > 0 ? rows : 24))
        let cw = max(1, caps.cellWidth ?? 10), ch = max(1, caps.cellHeight ?? 20)
        let maxLines = min(maxRows ?? lines - 2, lines - 2)
        var out: [UInt8] = []
        let shown: Shown
        switch choice.mode {
        case .kitty, .iterm, .sixel:
            // at most the image's own size, at most the window (less a line for the prompt)
            let (w, h) = LatentPreview.fittedSize(width: image.width, height: image.height,
                                                  maxWidth: min(image.width, columns * cw), maxHeight: min(image.height, maxLines * ch))
            let fitted = LatentPreview.resize(image, width: w, height: h)
            let imageRows = (h + ch - 1) / ch, imageCols = (w + cw - 1) / cw
            var seq: [UInt8]
            switch choice.mode {
            case .kitty:
                guard let p = try? KittyGraphics.payload(rgb: fitted.pixels, width: w, height: h) else { return nil }
                if choice.kittyPlaceholders {
                    // inside tmux: a virtual placement and placeholder text, which tmux keeps in the pane
                    let id = UInt32(20 + Int(getpid() % 200))
                    out += Passthrough.tmux(KittyGraphics.transmit(p, id: id, placement: 1, .virtual(columns: imageCols, rows: imageRows)))
                    for r in 0..<imageRows {
                        var line = "\u{1B}[38;5;\(id)m"
                        for c in 0..<imageCols {
                            guard let cell = KittyGraphics.placeholderCell(row: r, column: c) else { continue }
                            line += String(String.UnicodeScalarView(cell.compactMap(Unicode.Scalar.init)))
                        }
                        out += Array((line + "\u{1B}[39m\r\n").utf8)
                    }
                    write(outFD, out)
                    return Shown(mode: .kitty, width: w, height: h, rows: imageRows, reason: choice.reason)
                }
                seq = KittyGraphics.transmit(p, id: UInt32(0x4B54_0000) + UInt32(getpid() % 0xFFFF), placement: 1, .atCursor())
            case .iterm:
                guard let png = try? PNGFile.encode(fitted) else { return nil }
                seq = ITerm2Image.sequence(png: png, columns: imageCols, rows: imageRows)
            default:
                guard let s = try? Sixel.encode(rgb: fitted.pixels, width: w, height: h) else { return nil }
                seq = s
            }
            if choice.tmuxPassthrough && !(choice.mode == .sixel && caps.sixel) { seq = Passthrough.tmux(seq) }
            // make the rows (scrolling if needed), go back up, draw, end below the image
            out += Array((String(repeating: "\n", count: imageRows) + "\u{1B}[\(imageRows)A\r\u{1B}7").utf8)
            out += seq
            out += Array("\u{1B}8\u{1B}[\(imageRows)B\r".utf8)
            shown = Shown(mode: choice.mode, width: w, height: h, rows: imageRows, reason: choice.reason)
        default:
            // half blocks in 24-bit colour: two pixels a cell
            let fitted = LatentPreview.fit(image, maxWidth: min(columns, image.width), maxHeight: min(maxLines * 2, image.height))
            var text = ""
            for row in stride(from: 0, to: fitted.height, by: 2) {
                for x in 0..<fitted.width {
                    let (r1, g1, b1) = fitted[x, row]
                    let (r2, g2, b2) = row + 1 < fitted.height ? fitted[x, row + 1] : (r1, g1, b1)
                    text += "\u{1B}[38;2;\(r1);\(g1);\(b1)m\u{1B}[48;2;\(r2);\(g2);\(b2)m▀"
                }
                text += "\u{1B}[0m\r\n"
            }
            out += Array(text.utf8)
            shown = Shown(mode: .blocks, width: fitted.width, height: fitted.height, rows: (fitted.height + 1) / 2, reason: choice.reason)
        }
        write(outFD, out)
        return shown
    }

    private static func write(_ fd: Int32, _ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n < 0 { if errno == EINTR || errno == EAGAIN { usleep(1000); continue }; return }
            off += n
        }
    }
}
