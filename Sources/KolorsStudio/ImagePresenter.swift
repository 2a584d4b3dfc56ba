import CNcursesw
import Foundation
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
import KolorsTerminal
#if canImport(Glibc)
import Glibc
#endif

/// Writes pixel images over the ncurses screen after each refresh, in one of three protocols:
///
/// - **sixel** and **iTerm2 inline images**: save cursor, move, image, restore cursor. The image
///   becomes part of the cells, so taking one away needs the screen repainted (`needsClear`).
/// - **kitty graphics**: each screen slot owns two image ids and one placement id; a new frame is
///   transmitted and placed (`a=T`, `C=1`) under the other id and the old one deleted right after,
///   so a step's preview replaces the previous one in place without flicker, and a slot that goes
///   away (pane closed, overlay over it) is deleted (`a=d`) instead of repainting the screen.
///   Inside tmux the image is a virtual placement shown through U+10EEEE placeholder cells that the
///   studio draws as text (`placeholderCells`), so tmux keeps it in its pane.
///
/// Inside tmux every sequence goes through DCS passthrough. Encoding runs on a background queue
/// so the UI thread never waits for it. Requests are coalesced per screen slot: while one frame of
/// a slot is being encoded, only the newest waiting frame is kept. Live frames are held to a byte
/// budget per second, whatever the protocol.
final class ImagePresenter: @unchecked Sendable {
    enum Kind: String, Sendable { case sixel, kitty, iterm }

    let kind: Kind
    let outFD: Int32
    let cellWidth: Int
    let cellHeight: Int
    let tmuxPassthrough: Bool
    /// kitty only: virtual placements and placeholder cells (inside tmux).
    let placeholders: Bool
    /// Bytes per second the link may carry for live previews.
    let budget: Double
    let log: DebugLog
    private let onEncoded: @Sendable () -> Void
    private var tokens: Double
    private var lastRefill = Date()
    /// What is on the screen now (UI thread only): placement rect → (cache key, pixel size, kitty image id).
    private var shown: [Rect: (key: String, w: Int, h: Int, id: UInt32)] = [:]

    struct Encoded: Sendable {
        /// sixel / iTerm2: the whole image sequence; kitty: empty (see `kitty`).
        var bytes: [UInt8]
        var kitty: KittyGraphics.Payload?
        var w: Int; var h: Int; var dx: Int; var dy: Int; var cols: Int; var rows: Int
    }
    struct Request: Sendable { var key: String; var image: RGBImage; var rect: Rect; var live: Bool }
    private let lock = NSLock()
    private var encoded: [String: Encoded] = [:]          // guarded by lock
    /// The newest finished encoding per slot (guarded by lock): shown while the current frame
    /// is still encoding, so live previews run at the encoder's pace instead of starving.
    private var latest: [Rect: (key: String, enc: Encoded)] = [:]
    private var waiting: [Rect: Request] = [:]            // guarded by lock: newest request per slot
    private var busy = false                               // guarded by lock
    private let queue = DispatchQueue(label: "kolors.studio.images", qos: .userInitiated)
    /// A live frame held back by the budget: retried on the next loop turn.
    private(set) var pending = false

    init(kind: Kind, outFD: Int32, cellWidth: Int, cellHeight: Int, tmuxPassthrough: Bool, placeholders: Bool = false,
         budget: Double, log: DebugLog, onEncoded: @escaping @Sendable () -> Void) {
        self.kind = kind
        self.outFD = outFD
        self.cellWidth = max(1, cellWidth)
        self.cellHeight = max(1, cellHeight)
        self.tmuxPassthrough = tmuxPassthrough
        self.placeholders = kind == .kitty && placeholders
        self.budget = budget
        self.tokens = budget
        self.log = log
        self.onEncoded = onEncoded
    }

    /// The byte budget per second for live previews: `KOLORS_PREVIEW_BUDGET`, else the older
    /// `KOLORS_SIXEL_BUDGET`, else 4 MB/s.
    static func budget(environment: [String: String]) -> Double {
        for name in ["KOLORS_PREVIEW_BUDGET", "KOLORS_SIXEL_BUDGET"] {
            if let v = environment[name].flatMap(Double.init), v > 0 { return v }
        }
        return 4_000_000
    }

    /// Whether drawing `placements` needs the screen cleared first (an image went away, moved or
    /// changed size). kitty images are deleted and replaced by id instead: never.
    func needsClear(for placements: [(ImagePlacement, RGBImage?)]) -> Bool {
        guard kind != .kitty else { return false }
        let rects = Set(placements.map(\.0.rect))
        for (rect, _) in shown where !rects.contains(rect) { return true }
        for (p, img) in placements {
            guard let old = shown[p.rect], let img else { continue }
            let g = geometry(img, p.rect)
            if old.w != g.w || old.h != g.h { return true }
        }
        return false
    }

    /// The screen was cleared: nothing is shown any more (a clear also removes kitty's placements).
    func forget() { shown = [:] }

    func geometry(_ img: RGBImage, _ rect: Rect) -> (w: Int, h: Int, dx: Int, dy: Int, cols: Int, rows: Int) {
        let maxW = rect.width * cellWidth, maxH = rect.height * cellHeight
        let (w, h) = LatentPreview.fittedSize(width: img.width, height: img.height, maxWidth: maxW, maxHeight: maxH)
        let cols = min(rect.width, (w + cellWidth - 1) / cellWidth), rows = min(rect.height, (h + cellHeight - 1) / cellHeight)
        let dx = (rect.width - cols) / 2
        let dy = (rect.height - rows) / 2
        return (w, h, max(0, dx), max(0, dy), max(1, cols), max(1, rows))
    }

    // MARK: kitty ids

    private var slotNumbers: [Rect: UInt32] = [:]
    private var nextSlot: UInt32 = 0

    /// The slot's number, stable while the rect exists on screen.
    private func slot(_ rect: Rect) -> UInt32 {
        if let s = slotNumbers[rect] { return s }
        if slotNumbers.count > 200 { slotNumbers = slotNumbers.filter { shown[$0.key] != nil } }
        let used = Set(slotNumbers.values)
        repeat { nextSlot = (nextSlot + 1) % 220 } while used.contains(nextSlot)
        slotNumbers[rect] = nextSlot
        return nextSlot
    }

    /// Image ids: with placeholders one per slot in 20…239 (the id is the cells' 256-colour
    /// foreground); otherwise two per slot, alternating, above a base unlikely to meet other programs.
    private func imageID(for rect: Rect, replacing old: UInt32?) -> UInt32 {
        let s = slot(rect)
        if placeholders { return 20 + s }
        let a: UInt32 = 0x4B53_0000 + s * 2
        return old == a ? a + 1 : a
    }

    /// kitty placeholders inside tmux: the cells to draw as text before the refresh, so the images
    /// shown (or about to be) appear in them. Each cell: U+10EEEE, row and column diacritics, and
    /// the image id as foreground colour.
    func placeholderCells(for placements: [(ImagePlacement, RGBImage?)]) -> [(x: Int, y: Int, scalars: [UInt32], id: UInt32)] {
        guard placeholders else { return [] }
        var cells: [(Int, Int, [UInt32], UInt32)] = []
        for (p, img) in placements {
            guard let img else { continue }
            let g = geometry(img, p.rect)
            let id = imageID(for: p.rect, replacing: nil)
            for row in 0..<g.rows {
                for col in 0..<g.cols {
                    guard let s = KittyGraphics.placeholderCell(row: row, column: col) else { continue }
                    cells.append((p.rect.x + g.dx + col, p.rect.y + g.dy + row, s, id))
                }
            }
        }
        return cells
    }

    /// Emits the placements whose encoding is ready and not already on screen; asks for the rest.
    /// kitty images no longer placed are deleted.
    func present(_ placements: [(ImagePlacement, RGBImage?)]) {
        pending = false
        let now = Date()
        tokens = min(budget, tokens + now.timeIntervalSince(lastRefill) * budget)
        lastRefill = now
        var out: [UInt8] = []
        if kind == .kitty {
            let rects = Set(placements.compactMap { $0.1 == nil ? nil : $0.0.rect })
            for (rect, s) in shown where !rects.contains(rect) {
                out += wrap(KittyGraphics.delete(id: s.id))
                shown[rect] = nil
                log.write("kitty delete image \(s.id) at cell \(rect.x),\(rect.y)")
            }
        }
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
            let row = p.rect.y + enc.dy + 1, col = p.rect.x + enc.dx + 1
            var seq: [UInt8]
            var id: UInt32 = 0
            switch kind {
            case .sixel, .iterm:
                seq = Array("\u{1B}7\u{1B}[\(row);\(col)H".utf8) + enc.bytes + Array("\u{1B}8".utf8)
                seq = wrap(seq)
            case .kitty:
                guard let payload = enc.kitty else { continue }
                let old = shown[p.rect]?.id
                id = imageID(for: p.rect, replacing: old)
                if placeholders {
                    seq = wrap(KittyGraphics.transmit(payload, id: id, placement: 1, .virtual(columns: enc.cols, rows: enc.rows)))
                } else {
                    seq = wrap(Array("\u{1B}7\u{1B}[\(row);\(col)H".utf8)
                               + KittyGraphics.transmit(payload, id: id, placement: 1, .atCursor()) + Array("\u{1B}8".utf8))
                    if let old, old != id { seq += wrap(KittyGraphics.delete(id: old)) }
                }
            }
            out += seq
            tokens -= Double(seq.count)
            shown[p.rect] = (useKey, enc.w, enc.h, id)
            log.write("\(kind.rawValue) \(enc.w)x\(enc.h) px at cell \(p.rect.x + enc.dx),\(p.rect.y + enc.dy)"
                      + (kind == .kitty ? " id \(id)" + (placeholders ? " (\(enc.cols)x\(enc.rows) placeholder cells)" : "") : "")
                      + ": \(seq.count) bytes" + (tmuxPassthrough ? " (tmux passthrough)" : ""))
        }
        if !out.isEmpty {
            backlog += out
            flush(timeout: 0)
        }
    }

    /// kitty: deletes every image this presenter placed (before the screen is given back).
    func deleteAll() {
        guard kind == .kitty else { return }
        var out: [UInt8] = []
        for (_, s) in shown { out += wrap(KittyGraphics.delete(id: s.id)) }
        shown = [:]
        if !out.isEmpty {
            backlog += out
            flush(timeout: 1)
        }
    }

    private func wrap(_ seq: [UInt8]) -> [UInt8] { tmuxPassthrough ? Passthrough.tmux(seq) : seq }

    // MARK: incremental output

    /// Bytes of image output not yet written. While this is not empty, ncurses must not write
    /// (the terminal is inside an image sequence): the UI loop keeps handling keys and only
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
            var e = Encoded(bytes: [], kitty: nil, w: g.w, h: g.h, dx: g.dx, dy: g.dy, cols: g.cols, rows: g.rows)
            switch kind {
            case .sixel:
                // live step previews: fewer colours, no dithering (fewer bytes, faster); finished images: full quality
                guard let bytes = r.live
                    ? try? Sixel.encode(rgb: fitted.pixels, width: g.w, height: g.h, palette: .adaptive(colors: 64), diffuse: false)
                    : try? Sixel.encode(rgb: fitted.pixels, width: g.w, height: g.h, palette: .adaptive(colors: 256)) else { continue }
                e.bytes = bytes
            case .iterm:
                guard let png = try? PNGFile.encode(fitted) else { continue }
                e.bytes = ITerm2Image.sequence(png: png, columns: g.cols, rows: g.rows)
            case .kitty:
                guard let payload = try? KittyGraphics.payload(rgb: fitted.pixels, width: g.w, height: g.h) else { continue }
                e.kitty = payload
            }
            lock.withLock {
                if encoded.count > 48 { encoded.removeAll() }
                encoded[r.key] = e
                latest[r.rect] = (r.key, e)
            }
            log.write(String(format: "%@ encoded %dx%d in %.0f ms", kind.rawValue, g.w, g.h, Date().timeIntervalSince(t0) * 1000))
            onEncoded()
        }
    }

    /// DCS passthrough for tmux: ESC P tmux; <payload with every ESC doubled> ESC \
    static func tmuxWrap(_ payload: [UInt8]) -> [UInt8] { Passthrough.tmux(payload) }
}
