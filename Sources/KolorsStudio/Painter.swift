import CNcursesw
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore

/// Puts `Frame`s on the ncurses screen: theme roles become colour pairs, images drawn as
/// half blocks get colour pairs from a cache.
final class Painter {
    private(set) var colors: Int = 0
    private var pairCount: Int = 0
    private var rolePairs: [StyleRole: (pair: Int32, attrs: attr_t)] = [:]
    /// Half-block colour pairs: (fg, bg) → pair, allocated above the role pairs.
    private var blockPairs: [Int64: Int32] = [:]
    private var nextBlockPair: Int32 = 0
    private var firstBlockPair: Int32 = 0

    init() {
        if has_colors() {
            _ = start_color()
            _ = use_default_colors()
            colors = Int(kc_colors())
            pairCount = Int(kc_color_pairs())
        }
    }

    func apply(theme: Theme) {
        rolePairs = [:]
        var next: Int32 = 1
        for role in StyleRole.allCases {
            let r = theme.resolve(role, colors: colors)
            var attrs = kc_a_normal()
            for a in r.attributes {
                switch a {
                case .bold: attrs |= kc_a_bold()
                case .dim: attrs |= kc_a_dim()
                case .underline: attrs |= kc_a_underline()
                case .reverse: attrs |= kc_a_reverse()
                case .italic: attrs |= kc_a_italic()
                }
            }
            var pair: Int32 = 0
            if colors >= 8, Int(next) < pairCount {
                pair = next
                _ = kc_init_pair(pair, Int32(r.foreground), Int32(r.background))
                next += 1
            }
            rolePairs[role] = (pair, attrs)
        }
        firstBlockPair = next
        nextBlockPair = next
        blockPairs = [:]
        placeholderPairs = [:]
        // the background of the whole screen
        if let base = rolePairs[.base] {
            wbkgdset(kc_stdscr(), chtype(base.attrs) | chtype(kc_color_pair(Int32(base.pair))))
        }
    }

    /// Draws every cell of the frame (ncurses only sends what changed).
    func draw(_ frame: Frame) {
        let win = kc_stdscr()
        var wbuf = [wchar_t](repeating: 0, count: 8)
        for y in 0..<frame.height {
            var x = 0
            while x < frame.width {
                let cell = frame[x, y]
                if cell.text.isEmpty { x += 1; continue }
                let style = rolePairs[cell.role] ?? (0, kc_a_normal())
                var n = 0
                for u in cell.text.unicodeScalars where n < 6 {
                    wbuf[n] = wchar_t(bitPattern: u.value)
                    n += 1
                }
                // never write the bottom-right cell's right neighbour; ncurses handles the corner itself
                _ = kc_mvadd_cluster(win, Int32(y), Int32(x), &wbuf, Int32(n), style.attrs, style.pair)
                x += 1
            }
        }
    }

    // MARK: half blocks

    /// The terminal colour number for an RGB pixel.
    func colorNumber(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> Int32 {
        if colors >= 1 << 24 {
            let v = Int32(r) << 16 | Int32(g) << 8 | Int32(b)
            return v < 8 ? 8 : v
        }
        if colors >= 256 { return Int32(Theme.nearestXterm256(Int(r), Int(g), Int(b))) }
        return Int32(Theme.colorNumber(.rgb(r, g, b), colors: max(8, colors)).0)
    }

    /// A colour pair for (fg, bg), shared with (bg, fg): the second order draws with A_REVERSE,
    /// which halves the pairs an image needs (8 colours: 36 pairs for every combination).
    func blockPair(fg: Int32, bg: Int32) -> (pair: Int32, reverse: Bool) {
        let (a, b, reverse) = fg <= bg ? (fg, bg, false) : (bg, fg, true)
        let key = Int64(a) << 32 | Int64(b)
        if let p = blockPairs[key] { return (p, reverse) }
        if Int(nextBlockPair) >= pairCount {
            // out of pairs: start over (cells drawn earlier with a reused pair may recolour; only
            // on terminals with very few pairs)
            blockPairs = [:]
            nextBlockPair = firstBlockPair
        }
        let p = nextBlockPair
        nextBlockPair += 1
        _ = kc_init_pair(p, a, b)
        blockPairs[key] = p
        return (p, reverse)
    }

    private var fittedCache: [String: RGBImage] = [:]

    // MARK: kitty Unicode placeholders

    private var placeholderPairs: [UInt32: Int32] = [:]

    /// Draws one kitty placeholder cell: `scalars` (U+10EEEE and its diacritics) with the image id
    /// as foreground colour (256-colour index, or the RGB value 0x0000id on direct-colour terminals:
    /// both read back as the id) on the default background.
    @discardableResult
    func drawPlaceholder(_ scalars: [UInt32], x: Int, y: Int, id: UInt32) -> Bool {
        guard colors >= 256, id < 256, id >= 16 else { return false }
        let pair: Int32
        if let p = placeholderPairs[id] { pair = p } else {
            guard Int(nextBlockPair) < pairCount else { return false }
            pair = nextBlockPair
            nextBlockPair += 1
            _ = kc_init_pair(pair, Int32(id), -1)
            placeholderPairs[id] = pair
        }
        var wbuf = scalars.prefix(5).map { wchar_t(bitPattern: $0) }
        return kc_mvadd_cluster(kc_stdscr(), Int32(y), Int32(x), &wbuf, Int32(wbuf.count), kc_a_normal(), pair) != ERR
    }

    /// Draws `image` in `rect` with upper-half blocks: each cell shows two pixels (fg = top, bg = bottom).
    /// `key` identifies the image for caching its resized version.
    @discardableResult
    func drawBlocks(_ image: RGBImage, in rect: Rect, key: String) -> Bool {
        guard colors >= 8, rect.width > 0, rect.height > 0, image.width > 0, image.height > 0 else { return false }
        let fitted: RGBImage
        if let f = fittedCache[key] { fitted = f } else {
            fitted = LatentPreview.fit(image, maxWidth: rect.width, maxHeight: rect.height * 2)
            if fittedCache.count > 96 { fittedCache.removeAll() }
            fittedCache[key] = fitted
        }
        let cols = fitted.width, rows = (fitted.height + 1) / 2
        let x0 = rect.x + (rect.width - cols) / 2, y0 = rect.y + (rect.height - rows) / 2
        var ch: [wchar_t] = [0x2580, 0]
        for row in 0..<rows {
            for col in 0..<cols {
                let (r1, g1, b1) = fitted[col, 2 * row]
                let (r2, g2, b2) = 2 * row + 1 < fitted.height ? fitted[col, 2 * row + 1] : (r1, g1, b1)
                let (pair, reverse) = blockPair(fg: colorNumber(r1, g1, b1), bg: colorNumber(r2, g2, b2))
                _ = kc_mvadd_cluster(kc_stdscr(), Int32(y0 + row), Int32(x0 + col), &ch, 1,
                                     reverse ? kc_a_reverse() : kc_a_normal(), pair)
            }
        }
        return true
    }
}
