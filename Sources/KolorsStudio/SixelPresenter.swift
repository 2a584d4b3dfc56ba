import CNcursesw
import Foundation
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
import KolorsTerminal
#if canImport(Glibc)
import Glibc
#endif

/// Writes sixel images over the ncurses screen, after each refresh: save cursor, move,
/// sixel, restore cursor — wrapped for tmux passthrough when needed.
///
/// Encoding runs on a background queue so the UI thread never waits for it. Requests are
/// coalesced per screen slot: while one frame of a slot is being encoded, only the newest
/// waiting frame is kept (never more than one pending frame per slot). Live frames are also held
/// to a byte budget per second.
final class SixelPresenter: @unchecked Sendable {
    let outFD: Int32
    let cellWidth: Int
    let cellHeight: Int
    let tmuxPassthrough: Bool
    /// Bytes per second the link may carry for live previews.
    let budget: Double
    let log: DebugLog
    private let onEncoded: @Sendable () -> Void
    private var tokens: Double
    private var lastRefill = Date()
    /// What is on the screen now (UI thread only): placement rect → (cache key, pixel size).
    private var shown: [Rect: (key: String, w: Int, h: Int)] = [:]

    struct Encoded: Sendable { var bytes: [UInt8]; var w: Int; var h: Int; var dx: Int; var dy: Int }
    struct Request: Sendable { var key: String; var image: RGBImage; var rect: Rect; var live: Bool }
    private let lock = NSLock()
    private var encoded: [String: Encoded] = [:]          // guarded by lock
    /// The newest finished encoding per slot (guarded by lock): shown while the current frame
    /// is still encoding, so live previews run at the encoder's pace instead of starving.
    private var latest: [Rect: (key: String, enc: Encoded)] = [:]
    private var waiting: [Rect: Request] = [:]            // guarded by lock: newest request per slot
    private var busy = false                               // guarded by lock
    private let queue = DispatchQueue(label: "kolors.studio.sixel", qos: .userInitiated)
    /// A live frame held back by the budget: retried on the next loop turn.
    private(set) var pending = false

    init(outFD: Int32, cellWidth: Int, cellHeight: Int, tmuxPassthrough: Bool, budget: Double, log: DebugLog,
         onEncoded: @escaping @Sendable () -> Void) {
        self.outFD = outFD
        self.cellWidth = max(1, cellWidth)
        self.cellHeight = max(1, cellHeight)
        self.tmuxPassthrough = tmuxPassthrough
        self.budget = budget
        self.tokens = budget
        self.log = log
        self.onEncoded = onEncoded
    }

    /// Whether drawing `placements` needs the screen cleared first (an image went away, moved or changed size).
    func needsClear(for placements: [(ImagePlacement, RGBImage?)]) -> Bool {
        let rects = Set(placements.map(\.0.rect))
        for (rect, _) in shown where !rects.contains(rect) { return true }
        for (p, img) in placements {
            guard let old = shown[p.rect], let img else { continue }
            let g = geometry(img, p.rect)
            if old.w != g.w || old.h != g.h { return true }
        }
        return false
    }

    /// The screen was cleared: nothing is shown any more.
    func forget() { shown = [:] }

    func geometry(_ img: RGBImage, _ rect: Rect) -> (w: Int, h: Int, dx: Int, dy: Int) {
        let maxW = rect.width * cellWidth, maxH = rect.height * cellHeight
        let (w, h) = LatentPreview.fittedSize(width: img.width, height: img.height, maxWidth: maxW, maxHeight: maxH)
        let dx = (rect.width - (w + cellWidth - 1) / cellWidth) / 2
        let dy = (rect.height - (h + cellHeight - 1) / cellHeight) / 2
        return (w, h, max(0, dx), max(0, dy))
    }

    /// Emits the placements whose encoding is ready and not already on screen; asks for the rest.
    func present(_ placements: [(ImagePlacement, RGBImage?)]) {
        pending = false
        let now = Date()
        tokens = min(budget, tokens + now.timeIntervalSince(lastRefill) * budget)
        lastRefill = now
        var out: [UInt8] = []
        for (p, img) in placements {
            guard let img else { continue }
            let key = p.cacheKey
            if let s = shown[p.rect], s.key == key { continue }
            var useKey = key
            var ready = lock.withLock({ encoded[key] })
            if ready == nil {
                let live: Bool = if case .frame(let f) = p.source { f.live } else { false }
                request(Request(key: key, image: img, rect: p.rect, live: live))
                // meanwhile, the newest finished frame of this slot (if not on screen yet)
                if case .frame = p.source, let l = lock.withLock({ latest[p.rect] }), shown[p.rect]?.key != l.key {
                    ready = l.enc
                    useKey = l.key
                }
            }
            guard let enc = ready else { continue }
            let isLive: Bool = if case .frame = p.source { true } else { false }
            if isLive && tokens < 0 {
                pending = true
                continue
            }
            var seq: [UInt8] = Array("\u{1B}7\u{1B}[\(p.rect.y + enc.dy + 1);\(p.rect.x + enc.dx + 1)H".utf8)
            seq += enc.bytes
            seq += Array("\u{1B}8".utf8)
            if tmuxPassthrough { seq = Self.tmuxWrap(seq) }
            out += seq
            tokens -= Double(seq.count)
            shown[p.rect] = (useKey, enc.w, enc.h)
            log.write("sixel \(enc.w)x\(enc.h) px at cell \(p.rect.x + enc.dx),\(p.rect.y + enc.dy): \(seq.count) bytes"
                      + (tmuxPassthrough ? " (tmux passthrough)" : ""))
        }
        if !out.isEmpty {
            backlog += out
            flush(timeout: 0)
        }
    }

    // MARK: incremental output

    /// Bytes of sixel output not yet written. While this is not empty, ncurses must not write
    /// (the terminal is inside a sixel sequence): the UI loop keeps handling keys and only
    /// repaints once it has drained.
    private var backlog: [UInt8] = []
    private var backlogOffset = 0
    var isWriting: Bool { backlogOffset < backlog.count }

    /// Writes what the terminal accepts within `timeout` seconds (0: only what fits now).
    func flush(timeout: Double) {
        let deadline = Date().addingTimeInterval(timeout)
        while backlogOffset < backlog.count {
            var pfd = pollfd(fd: outFD, events: Int16(POLLOUT), revents: 0)
            let ms = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            guard poll(&pfd, 1, ms) > 0 else { return }
            let chunk = min(4096, backlog.count - backlogOffset)
            let n = backlog.withUnsafeBytes { raw in write(outFD, raw.baseAddress! + backlogOffset, chunk) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                backlog = []; backlogOffset = 0         // the terminal is gone
                return
            }
            backlogOffset += n
        }
        backlog = []
        backlogOffset = 0
    }

    /// Finishes any sequence in flight (before quitting), so the terminal is not left inside it.
    func finish() { flush(timeout: 5) }

    /// Queues an encode; a newer request for the same slot replaces a waiting one.
    private func request(_ r: Request) {
        let start: Bool = lock.withLock {
            waiting[r.rect] = r
            if busy { return false }
            busy = true
            return true
        }
        if start { queue.async { self.drain() } }
    }

    private func drain() {
        kc_nice_this_thread(5)         // encoding yields to the UI thread
        defer { kc_nice_this_thread(-5) }
        while true {
            let next: Request? = lock.withLock {
                guard let (rect, r) = waiting.first else { busy = false; return nil }
                waiting[rect] = nil
                return encoded[r.key] == nil ? r : Request(key: "", image: r.image, rect: rect, live: r.live)
            }
            guard let r = next else { return }
            if r.key.isEmpty { continue }             // already encoded meanwhile
            let t0 = Date()
            let g = geometry(r.image, r.rect)
            let fitted = LatentPreview.resize(r.image, width: g.w, height: g.h)
            // live step previews: fewer colours, no dithering (fewer bytes, faster); finished images: full quality
            let bytes = r.live
                ? try? Sixel.encode(rgb: fitted.pixels, width: g.w, height: g.h, palette: .adaptive(colors: 64), diffuse: false)
                : try? Sixel.encode(rgb: fitted.pixels, width: g.w, height: g.h, palette: .adaptive(colors: 256))
            if let bytes {
                lock.withLock {
                    if encoded.count > 48 { encoded.removeAll() }
                    let e = Encoded(bytes: bytes, w: g.w, h: g.h, dx: g.dx, dy: g.dy)
                    encoded[r.key] = e
                    latest[r.rect] = (r.key, e)
                }
                log.write(String(format: "sixel encoded %dx%d in %.0f ms", g.w, g.h, Date().timeIntervalSince(t0) * 1000))
                onEncoded()
            }
        }
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

}
