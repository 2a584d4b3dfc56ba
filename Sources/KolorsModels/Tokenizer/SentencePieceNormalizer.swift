/// SentencePiece's text normalizer (mirrors `normalizer::Normalizer::Normalize`): user-defined
/// symbols pass through untouched, otherwise the longest precompiled-charsmap rule applies,
/// malformed UTF-8 bytes become U+FFFD one byte at a time, spaces are collapsed/trimmed
/// (remove_extra_whitespaces), escaped to U+2581 "▁" and a dummy "▁" prefix (or, with
/// treat_whitespace_as_suffix, suffix) is added.
public struct SentencePieceNormalizer: Sendable {
    private let trie: DoubleArrayTrie?
    private let replacements: [UInt8]
    private let userSymbols: UserSymbolMatcher
    public let addDummyPrefix: Bool
    public let removeExtraWhitespaces: Bool
    public let escapeWhitespaces: Bool
    public let treatWhitespaceAsSuffix: Bool

    static let spaceSymbol: [UInt8] = [0xE2, 0x96, 0x81]  // U+2581
    private static let replacementCharacter: [UInt8] = [0xEF, 0xBF, 0xBD]  // U+FFFD

    init(spec: SentencePieceModel.NormalizerSpec, treatWhitespaceAsSuffix: Bool,
         userSymbols: UserSymbolMatcher) throws {
        addDummyPrefix = spec.addDummyPrefix
        removeExtraWhitespaces = spec.removeExtraWhitespaces
        escapeWhitespaces = spec.escapeWhitespaces
        self.treatWhitespaceAsSuffix = treatWhitespaceAsSuffix
        self.userSymbols = userSymbols
        let blob = spec.precompiledCharsmap
        if blob.isEmpty {
            trie = nil
            replacements = []
            return
        }
        // <trie size: uint32 LE><double array: trie size bytes><NUL-separated replacements>
        guard blob.count > 4 else { throw SentencePieceError("precompiled charsmap is broken") }
        let trieSize = Int(blob[0]) | Int(blob[1]) << 8 | Int(blob[2]) << 16 | Int(blob[3]) << 24
        guard trieSize < blob.count, 4 + trieSize <= blob.count else {
            throw SentencePieceError("precompiled charsmap: trie size exceeds the blob")
        }
        var units = [UInt32](repeating: 0, count: trieSize / 4)
        for k in units.indices {
            let o = 4 + 4 * k
            units[k] = UInt32(blob[o]) | UInt32(blob[o + 1]) << 8 | UInt32(blob[o + 2]) << 16
                | UInt32(blob[o + 3]) << 24
        }
        trie = DoubleArrayTrie(units: units)
        replacements = Array(blob[(4 + trieSize)...])
    }

    /// One step of `NormalizePrefix`: how many input bytes are consumed and what they become.
    private enum Output {
        case input(Range<Int>)        // copied through
        case replacement(Range<Int>)  // a range of `replacements`
        case replacementCharacter     // U+FFFD for a malformed byte
    }

    private func normalizePrefix(_ text: UnsafeBufferPointer<UInt8>, at start: Int, end: Int)
        -> (output: Output, consumed: Int) {
        if let length = userSymbols.match(text, at: start, end: end) {
            return (.input(start..<(start + length)), length)
        }
        if let trie, let (length, value) = trie.longestPrefix(text, at: start, end: end) {
            // The replacement is the NUL-terminated string at `value`.
            let from = min(Int(value), replacements.count)
            var to = from
            while to < replacements.count && replacements[to] != 0 { to += 1 }
            return (.replacement(from..<to), length)
        }
        if let length = UTF8Decoding.validCharLength(text, at: start, end: end) {
            return (.input(start..<(start + length)), length)
        }
        return (.replacementCharacter, 1)
    }

    @inline(__always)
    private func withBytes<R>(_ output: Output, _ text: UnsafeBufferPointer<UInt8>,
                              _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        switch output {
        case .input(let range):
            return body(UnsafeBufferPointer(rebasing: text[range]))
        case .replacement(let range):
            return replacements.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[range])) }
        case .replacementCharacter:
            return Self.replacementCharacter.withUnsafeBufferPointer { body($0) }
        }
    }

    /// Normalizes UTF-8 bytes (which may be malformed).
    public func normalize(_ input: [UInt8]) -> [UInt8] {
        input.withUnsafeBufferPointer { normalize($0) }
    }

    public func normalize(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var start = 0
        let end = text.count
        var normalized: [UInt8] = []
        if end == 0 { return normalized }

        // Leading whitespace: whole steps that normalize to exactly " ".
        if removeExtraWhitespaces {
            while start < end {
                let (output, consumed) = normalizePrefix(text, at: start, end: end)
                let isSpace = withBytes(output, text) { $0.count == 1 && $0[0] == 0x20 }
                if !isSpace { break }
                start += consumed
            }
        }
        if start == end { return normalized }
        normalized.reserveCapacity((end - start) * 3)

        func addSpace() {
            if escapeWhitespaces { normalized.append(contentsOf: Self.spaceSymbol) } else { normalized.append(0x20) }
        }
        if !treatWhitespaceAsSuffix && addDummyPrefix { addSpace() }

        var isPreviousSpace = removeExtraWhitespaces
        while start < end {
            let (output, consumed) = normalizePrefix(text, at: start, end: end)
            withBytes(output, text) { piece in
                var from = 0
                // Drop the leading spaces of this step if the previous step ended with one.
                if isPreviousSpace { while from < piece.count && piece[from] == 0x20 { from += 1 } }
                if from < piece.count {
                    for n in from..<piece.count {
                        if escapeWhitespaces && piece[n] == 0x20 {
                            normalized.append(contentsOf: Self.spaceSymbol)
                        } else {
                            normalized.append(piece[n])
                        }
                    }
                    isPreviousSpace = piece[piece.count - 1] == 0x20
                }
            }
            start += consumed
            if !removeExtraWhitespaces { isPreviousSpace = false }
        }

        // Trailing whitespace (escaped or not); note this also drops a literal "▁" in the text.
        if removeExtraWhitespaces {
            let space: [UInt8] = escapeWhitespaces ? Self.spaceSymbol : [0x20]
            while normalized.count >= space.count && normalized.suffix(space.count).elementsEqual(space) {
                normalized.removeLast(space.count)
            }
        }
        if treatWhitespaceAsSuffix && addDummyPrefix { addSpace() }
        return normalized
    }
}
