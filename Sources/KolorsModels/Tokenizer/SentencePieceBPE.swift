/// BPE segmentation of normalized text (mirrors sentencepiece `bpe::Model::SampleEncode` with
/// no dropout): split into characters (user-defined symbols whole and frozen), then keep
/// merging the adjacent pair whose concatenation is a vocabulary piece with the highest score,
/// ties going to the leftmost pair; pieces of type UNUSED may be built but are split back
/// into the two parts they were last built from.
struct SentencePieceBPE: Sendable {
    /// A piece of the output: bytes `start..<start+length` of the normalized text and its id
    /// (the unknown id for text that is not in the vocabulary).
    struct Segment: Equatable {
        var start: Int
        var length: Int
        var id: Int32
    }

    /// NORMAL, USER_DEFINED and UNUSED pieces: the ones BPE may build (`pieces_`).
    let mergeable: PieceTable
    /// CONTROL, UNKNOWN and BYTE pieces (`reserved_id_map_`), looked up first by `pieceToId`.
    let reserved: PieceTable
    let scores: [Float]
    let isUnused: [Bool]
    let unknownId: Int32
    let userSymbols: UserSymbolMatcher

    /// `ModelInterface::PieceToId`: reserved pieces first, then the others, else unknown.
    @inline(__always)
    func pieceToId(_ text: UnsafeBufferPointer<UInt8>, start: Int, length: Int) -> Int32 {
        if let id = reserved.lookup(text, start: start, length: length) { return id }
        if let id = mergeable.lookup(text, start: start, length: length) { return id }
        return unknownId
    }

    private struct Symbol {
        var prev: Int32
        var next: Int32
        var start: Int32
        var length: Int32  // 0 once merged into its left neighbour
        var frozen: Bool
    }

    /// A candidate merge of `left` and `right` into a piece of `size` bytes.
    private struct Candidate {
        var score: Float
        var left: Int32
        var right: Int32
        var size: Int32

        /// The order of the C++ agenda: higher score first, then the leftmost pair.
        @inline(__always)
        func outranks(_ other: Candidate) -> Bool {
            other.score < score || (other.score == score && other.left > left)
        }
    }

    /// A binary max-heap of candidates (the C++ `std::priority_queue`).
    private struct Agenda {
        var items: [Candidate] = []

        mutating func push(_ c: Candidate) {
            items.append(c)
            var i = items.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                if !items[i].outranks(items[parent]) { break }
                items.swapAt(i, parent)
                i = parent
            }
        }

        mutating func pop() -> Candidate? {
            guard let top = items.first else { return nil }
            let last = items.removeLast()
            if items.isEmpty { return top }
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < n && items[l].outranks(items[best]) { best = l }
                if r < n && items[r].outranks(items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
            return top
        }
    }

    /// Segments `text` (already normalized).
    func encode(_ text: UnsafeBufferPointer<UInt8>) -> [Segment] {
        let end = text.count
        if end == 0 { return [] }

        // Split into characters / user-defined symbols.
        var symbols: [Symbol] = []
        symbols.reserveCapacity(end)
        var position = 0
        while position < end {
            let (length, found) = userSymbols.prefixMatch(text, at: position, end: end)
            let index = Int32(symbols.count)
            position += length
            symbols.append(Symbol(prev: index - 1, next: position < end ? index + 1 : -1,
                                  start: Int32(position - length), length: Int32(length), frozen: found))
        }

        var agenda = Agenda()
        agenda.items.reserveCapacity(symbols.count)
        // Last split of each UNUSED piece built so far: piece id → (left, right) byte ranges.
        var reverseMerges: [Int32: (Range<Int>, Range<Int>)] = [:]

        func addCandidate(_ left: Int32, _ right: Int32) {
            if left < 0 || right < 0 { return }
            let l = symbols[Int(left)], r = symbols[Int(right)]
            if l.frozen || r.frozen { return }
            let size = Int(l.length + r.length)
            guard let id = mergeable.lookup(text, start: Int(l.start), length: size) else { return }
            agenda.push(Candidate(score: scores[Int(id)], left: left, right: right, size: Int32(size)))
            if isUnused[Int(id)] {
                let ls = Int(l.start), rs = Int(r.start)
                reverseMerges[id] = (ls..<(ls + Int(l.length)), rs..<(rs + Int(r.length)))
            }
        }

        for i in 1..<symbols.count { addCandidate(Int32(i - 1), Int32(i)) }

        while let top = agenda.pop() {
            let left = Int(top.left), right = Int(top.right)
            // Skip candidates made stale by an earlier merge.
            if symbols[left].length == 0 || symbols[right].length == 0
                || symbols[left].length + symbols[right].length != top.size {
                continue
            }
            symbols[left].length += symbols[right].length
            symbols[left].next = symbols[right].next
            if symbols[right].next >= 0 { symbols[Int(symbols[right].next)].prev = top.left }
            symbols[right].length = 0
            addCandidate(symbols[left].prev, top.left)
            addCandidate(top.left, symbols[left].next)
        }

        var output: [Segment] = []
        output.reserveCapacity(symbols.count)
        func resegment(_ range: Range<Int>) {
            let id = pieceToId(text, start: range.lowerBound, length: range.count)
            if id >= 0 && Int(id) < isUnused.count && isUnused[Int(id)], let (l, r) = reverseMerges[id] {
                resegment(l)
                resegment(r)
            } else {
                output.append(Segment(start: range.lowerBound, length: range.count, id: id))
            }
        }
        var index: Int32 = 0
        while index >= 0 {
            let s = symbols[Int(index)]
            resegment(Int(s.start)..<Int(s.start + s.length))
            index = s.next
        }
        return output
    }
}
