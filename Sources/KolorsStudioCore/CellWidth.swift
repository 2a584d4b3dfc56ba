/// Terminal cell widths of grapheme clusters, from Unicode properties (no locale, no wcwidth):
/// East Asian Wide / Fullwidth characters and emoji take two cells, combining marks, format
/// characters and controls none, everything else one.
public enum CellWidth {
    /// Cells taken by one grapheme cluster (0, 1 or 2).
    public static func of(_ c: Character) -> Int {
        let scalars = c.unicodeScalars
        guard let first = scalars.first else { return 0 }
        if scalars.count == 1 { return scalar(first) }
        var width = 0
        var hasVS16 = false, hasZWJ = false, regional = 0, emojiBase = false, keycap = false
        for s in scalars {
            switch s.value {
            case 0xFE0F: hasVS16 = true
            case 0x200D: hasZWJ = true
            case 0x1F1E6...0x1F1FF: regional += 1
            case 0x20E3: keycap = true
            default: break
            }
            if s.properties.isEmoji { emojiBase = true }
            width = max(width, scalar(s))
        }
        // Emoji presentation sequences, ZWJ sequences, flags and keycaps render two cells wide.
        if regional >= 2 || keycap { return 2 }
        if emojiBase && (hasVS16 || hasZWJ) { return 2 }
        // A base with combining marks: the width of the widest spacing scalar (usually the base).
        if width == 0, first.properties.generalCategory == .nonspacingMark { return 0 }
        return width
    }

    /// Cells taken by a string (sum over its grapheme clusters).
    public static func of<S: StringProtocol>(_ s: S) -> Int {
        var w = 0
        for c in s { w += of(c) }
        return w
    }

    /// Cells taken by one Unicode scalar on its own.
    public static func scalar(_ s: Unicode.Scalar) -> Int {
        let v = s.value
        if v < 0x20 || (v >= 0x7F && v < 0xA0) { return 0 }          // C0/C1 controls
        if v < 0x300 { return 1 }                                     // fast path: Latin
        switch s.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return 0
        default: break
        }
        if (0x1160...0x11FF).contains(v) || (0xD7B0...0xD7FF).contains(v) { return 0 } // Hangul medial/final jamo
        if s.properties.isEmojiPresentation { return 2 }
        return isEastAsianWide(v) ? 2 : 1
    }

    /// East Asian Width W or F (UAX #11), the main blocks.
    public static func isEastAsianWide(_ v: UInt32) -> Bool {
        for r in wideRanges where r.contains(v) { return true }
        return false
    }

    static let wideRanges: [ClosedRange<UInt32>] = [
        0x1100...0x115F,   // Hangul Jamo initial consonants
        0x231A...0x231B, 0x2329...0x232A, 0x23E9...0x23EC, 0x23F0...0x23F0, 0x23F3...0x23F3,
        0x25FD...0x25FE, 0x2614...0x2615, 0x2648...0x2653, 0x267F...0x267F, 0x2693...0x2693,
        0x26A1...0x26A1, 0x26AA...0x26AB, 0x26BD...0x26BE, 0x26C4...0x26C5, 0x26CE...0x26CE,
        0x26D4...0x26D4, 0x26EA...0x26EA, 0x26F2...0x26F3, 0x26F5...0x26F5, 0x26FA...0x26FA,
        0x26FD...0x26FD, 0x2705...0x2705, 0x270A...0x270B, 0x2728...0x2728, 0x274C...0x274C,
        0x274E...0x274E, 0x2753...0x2755, 0x2757...0x2757, 0x2795...0x2797, 0x27B0...0x27B0,
        0x27BF...0x27BF, 0x2B1B...0x2B1C, 0x2B50...0x2B50, 0x2B55...0x2B55,
        0x2E80...0x2FFF,   // CJK radicals, Kangxi, ideographic description
        0x3000...0x303E,   // CJK symbols and punctuation (ideographic space, 、。「」)
        0x3041...0x33FF,   // Hiragana, Katakana, Bopomofo, Hangul compatibility, Kanbun, CJK strokes, enclosed, compatibility
        0x3400...0x4DBF,   // CJK Extension A
        0x4E00...0x9FFF,   // CJK Unified Ideographs
        0xA000...0xA4CF,   // Yi
        0xA960...0xA97F,   // Hangul Jamo Extended-A
        0xAC00...0xD7A3,   // Hangul syllables
        0xF900...0xFAFF,   // CJK compatibility ideographs
        0xFE10...0xFE19,   // vertical forms
        0xFE30...0xFE6F,   // CJK compatibility forms, small form variants
        0xFF00...0xFF60,   // fullwidth forms
        0xFFE0...0xFFE6,   // fullwidth signs
        0x16FE0...0x16FE4, 0x16FF0...0x16FF1,
        0x17000...0x18CFF, // Tangut, Khitan
        0x18D00...0x18D08,
        0x1AFF0...0x1B2FF, // Kana extended/supplement, Nushu
        0x1F004...0x1F004, 0x1F0CF...0x1F0CF, 0x1F18E...0x1F18E, 0x1F191...0x1F19A,
        0x1F200...0x1F202, 0x1F210...0x1F23B, 0x1F240...0x1F248, 0x1F250...0x1F251, 0x1F260...0x1F265,
        0x20000...0x2FFFD, // CJK Extensions B–F
        0x30000...0x3FFFD, // CJK Extension G and later
    ]

    /// The longest prefix of `s` that fits in `width` cells, and its width.
    public static func prefix<S: StringProtocol>(_ s: S, fitting width: Int) -> (String, Int) {
        var out = ""
        var w = 0
        for c in s {
            let cw = of(c)
            if w + cw > width { break }
            out.append(c)
            w += cw
        }
        return (out, w)
    }

    /// `s` cut to `width` cells, with "…" when cut.
    public static func truncate<S: StringProtocol>(_ s: S, to width: Int) -> String {
        guard width > 0 else { return "" }
        if of(s) <= width { return String(s) }
        return prefix(s, fitting: width - 1).0 + "…"
    }

    /// `s` wrapped into lines of at most `width` cells, breaking between words (a word longer than
    /// a line is broken where it must); newlines start new lines. Nothing is dropped but the spaces
    /// at the breaks.
    public static func wrap(_ s: String, width: Int) -> [String] {
        let width = max(1, width)
        var out: [String] = []
        for paragraph in s.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = "", lineWidth = 0
            for word in paragraph.split(separator: " ", omittingEmptySubsequences: false) {
                var word = Substring(word)
                let ww = of(word)
                if lineWidth > 0 && lineWidth + 1 + ww <= width {
                    line += " " + word
                    lineWidth += 1 + ww
                    continue
                }
                if lineWidth > 0 || !line.isEmpty { out.append(line) }
                line = ""
                lineWidth = 0
                while of(word) > width {
                    let (head, _) = prefix(word, fitting: width)
                    out.append(head)
                    word = word.dropFirst(head.count)
                }
                line = String(word)
                lineWidth = of(word)
            }
            out.append(line)
        }
        return out
    }

    /// `s` padded with spaces (or cut) to exactly `width` cells.
    public static func pad<S: StringProtocol>(_ s: S, to width: Int) -> String {
        let t = truncate(s, to: width)
        return t + String(repeating: " ", count: max(0, width - of(t)))
    }
}
