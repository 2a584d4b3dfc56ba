import Foundation
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
import KolorsTerminal
#if canImport(Glibc)
import Glibc
#endif

/// Writes sixel images over the ncurses screen, after each refresh: save cursor, move,
/// sixel, restore cursor — wrapped for tmux passthrough when needed. Encoded frames are cached;
/// live frames are throttled to a byte budget and coalesced (only the newest waits).
final class SixelPresenter {
    let outFD: Int32
    let cellWidth: Int
    let cellHeight: Int
    let tmuxPassthrough: Bool
    /// Bytes per second the link may carry for previews.
    let budget: Double
    private var tokens: Double
    private var lastRefill = Date()
    /// What is on the screen now: placement rect → (cache key, pixel size).
    private var shown: [Rect: (key: String, w: Int, h: Int)] = [:]
    private var encoded: [String: (bytes: [UInt8], w: Int, h: Int, dx: Int, dy: Int)] = [:]
    /// A placement that could not be shown yet (budget): retried on the next loop turn.
    private(set) var pending = false

    let log: DebugLog

    init(outFD: Int32, cellWidth: Int, cellHeight: Int, tmuxPassthrough: Bool, budget: Double, log: DebugLog) {
        self.log = log
        self.outFD = outFD
        self.cellWidth = max(1, cellWidth)
        self.cellHeight = max(1, cellHeight)
        self.tmuxPassthrough = tmuxPassthrough
        self.budget = budget
        self.tokens = budget
    }

    /// Whether drawing `placements` needs the screen cleared first (an image went away, moved or changed size).
    func needsClear(for placements: [(ImagePlacement, RGBImage?)]) -> Bool {
        let rects = Set(placements.map(\.0.rect))
        for (rect, _) in shown where !rects.contains(rect) { return true }
        for (p, img) in placements {
            guard let old = shown[p.rect], let img else { continue }
            let (w, h, _, _) = geometry(img, p.rect)
            if old.w != w || old.h != h { return true }
        }
        return false
    }

    /// The screen was cleared: nothing is shown any more.
    func forget() { shown = [:] }

    private func geometry(_ img: RGBImage, _ rect: Rect) -> (Int, Int, Int, Int) {
        let maxW = rect.width * cellWidth, maxH = rect.height * cellHeight
        let (w, h) = LatentPreview.fittedSize(width: img.width, height: img.height, maxWidth: maxW, maxHeight: maxH)
        let dx = (rect.width - (w + cellWidth - 1) / cellWidth) / 2
        let dy = (rect.height - (h + cellHeight - 1) / cellHeight) / 2
        return (w, h, max(0, dx), max(0, dy))
    }

    /// Emits the placements not already on screen. `live` frames respect the budget; others always go.
    func present(_ placements: [(ImagePlacement, RGBImage?)]) {
        pending = false
        let now = Date()
        tokens = min(budget, tokens + now.timeIntervalSince(lastRefill) * budget)
        lastRefill = now
        var out: [UInt8] = []
        for (p, img) in placements {
            guard let img else { pending = true; continue }
            let key = p.cacheKey
            if let s = shown[p.rect], s.key == key { continue }
            let isLive: Bool = if case .frame = p.source { true } else { false }
            if isLive && tokens < 0 {
                pending = true
                continue
            }
            guard let enc = encode(img, p.rect, key: key) else { continue }
            var seq: [UInt8] = Array("\u{1B}7\u{1B}[\(p.rect.y + enc.dy + 1);\(p.rect.x + enc.dx + 1)H".utf8)
            seq += enc.bytes
            seq += Array("\u{1B}8".utf8)
            if tmuxPassthrough { seq = Self.tmuxWrap(seq) }
            out += seq
            tokens -= Double(seq.count)
            shown[p.rect] = (key, enc.w, enc.h)
            log.write("sixel \(enc.w)x\(enc.h) px at cell \(p.rect.x + enc.dx),\(p.rect.y + enc.dy): \(seq.count) bytes\(tmuxPassthrough ? " (tmux passthrough)" : "")")
        }
        if !out.isEmpty { writeAll(out) }
    }

    private func encode(_ img: RGBImage, _ rect: Rect, key: String) -> (bytes: [UInt8], w: Int, h: Int, dx: Int, dy: Int)? {
        if let e = encoded[key] { return e }
        let (w, h, dx, dy) = geometry(img, rect)
        let fitted = LatentPreview.resize(img, width: w, height: h)
        guard let bytes = try? Sixel.encode(rgb: fitted.pixels, width: w, height: h, palette: .adaptive(colors: 256)) else {
            return nil
        }
        if encoded.count > 48 { encoded.removeAll() }
        let e = (bytes, w, h, dx, dy)
        encoded[key] = e
        return e
    }

    /// DCS passthrough for tmux: ESC P tmux; <payload with every ESC doubled> ESC \
    static func tmuxWrap(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = Array("\u{1B}Ptmux;".utf8)
        out.reserveCapacity(payload.count + 16)
        for b in payload {
            if b == 0x1B { out.append(0x1B) }
            out.append(b)
        }
        out += [0x1B, 0x5C]
        return out
    }

    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(outFD, raw.baseAddress! + off, raw.count - off)
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return
                }
                off += n
            }
        }
    }
}
