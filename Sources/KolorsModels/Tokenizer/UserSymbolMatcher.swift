/// Longest-prefix matching of user-defined symbols (mirrors sentencepiece's
/// `normalizer::PrefixMatcher`): symbols are never normalized and never merged by BPE.
struct UserSymbolMatcher: Sendable {
    /// Symbols grouped by first byte, longest first.
    private var byFirstByte: [[[UInt8]]] = Array(repeating: [], count: 256)
    private(set) var isEmpty = true

    init(symbols: [[UInt8]]) {
        for var symbol in symbols {
            // The C++ matcher keys a Darts trie with C strings: a symbol ends at its first NUL.
            if let nul = symbol.firstIndex(of: 0) { symbol.removeSubrange(nul...) }
            guard let first = symbol.first else { continue }
            if !byFirstByte[Int(first)].contains(symbol) { byFirstByte[Int(first)].append(symbol) }
            isEmpty = false
        }
        for i in byFirstByte.indices { byFirstByte[i].sort { $0.count > $1.count } }
    }

    /// Length of the longest symbol that `text[start..<end]` begins with, or nil.
    func match(_ text: UnsafeBufferPointer<UInt8>, at start: Int, end: Int) -> Int? {
        if isEmpty || start >= end { return nil }
        let available = end - start
        candidates: for symbol in byFirstByte[Int(text[start])] where symbol.count <= available {
            for k in 1..<symbol.count where text[start + k] != symbol[k] { continue candidates }
            return symbol.count
        }
        return nil
    }

    /// What `PrefixMatcher::PrefixMatch` returns: the length of a matching symbol (`found`), or
    /// else the UTF-8 length announced by the first byte, clipped to the input.
    func prefixMatch(_ text: UnsafeBufferPointer<UInt8>, at start: Int, end: Int) -> (length: Int, found: Bool) {
        if let length = match(text, at: start, end: end) { return (length, true) }
        return (min(end - start, UTF8Decoding.oneCharLength(text[start])), false)
    }
}
