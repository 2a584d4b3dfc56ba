/// A multi-line text editor model over grapheme clusters. Columns count clusters (what the
/// cursor steps over); the view wraps lines by terminal cell width (`CellWidth`).
public struct TextEditor: Equatable, Sendable {
    public struct Position: Equatable, Comparable, Sendable {
        public var line: Int
        public var column: Int
        public init(line: Int, column: Int) { self.line = line; self.column = column }
        public static func < (a: Position, b: Position) -> Bool { (a.line, a.column) < (b.line, b.column) }
    }

    /// One row of the wrapped view: a slice of a logical line.
    public struct VisualRow: Equatable, Sendable {
        public var line: Int
        public var start: Int     // first cluster (column) of the row
        public var end: Int       // one past the last cluster
        public var text: String
    }

    public private(set) var lines: [[Character]] = [[]]
    public private(set) var cursor = Position(line: 0, column: 0)
    /// Single-line editors turn newlines into spaces.
    public let singleLine: Bool
    /// Visual x the cursor tries to keep when moving up and down.
    private var preferredX: Int?

    public init(_ text: String = "", singleLine: Bool = false) {
        self.singleLine = singleLine
        setText(text)
    }

    public var text: String { lines.map { String($0) }.joined(separator: "\n") }
    public var isEmpty: Bool { lines.count == 1 && lines[0].isEmpty }
    public var characterCount: Int { lines.reduce(lines.count - 1) { $0 + $1.count } }

    /// Replaces everything; the cursor goes to the end.
    public mutating func setText(_ text: String) {
        lines = [[]]
        cursor = Position(line: 0, column: 0)
        insert(text)
    }

    // MARK: - editing

    /// Inserts text at the cursor. CRLF/CR become newlines (spaces in single-line editors), tabs
    /// become a space, other control characters are dropped.
    public mutating func insert(_ text: String) {
        preferredX = nil
        var pieces: [[Character]] = [[]]
        for c in text {
            if c == "\n" || c == "\r\n" || c == "\r" {
                if singleLine { pieces[pieces.count - 1].append(" ") } else { pieces.append([]) }
            } else if c == "\t" {
                pieces[pieces.count - 1].append(" ")
            } else if let s = c.unicodeScalars.first, c.unicodeScalars.count == 1, s.value < 0x20 || s.value == 0x7F {
                continue
            } else {
                pieces[pieces.count - 1].append(c)
            }
        }
        if pieces.count == 1 {
            let start = cursor.column
            lines[cursor.line].insert(contentsOf: pieces[0], at: start)
            cursor.column = start + pieces[0].count
            // a join may merge clusters (a combining mark after a base)
            normalizeJoins(cursor.line, at: [start, cursor.column])
            return
        }
        var line = lines[cursor.line]
        let tail = Array(line[cursor.column...])
        line.removeSubrange(cursor.column...)
        let start = cursor.column
        line.append(contentsOf: pieces[0])
        lines[cursor.line] = line
        var newLines = Array(pieces[1...])
        let lastColumn = newLines[newLines.count - 1].count
        newLines[newLines.count - 1].append(contentsOf: tail)
        lines.insert(contentsOf: newLines, at: cursor.line + 1)
        normalizeJoins(cursor.line, at: [start])
        cursor = Position(line: cursor.line + newLines.count, column: lastColumn)
        normalizeJoins(cursor.line, at: [lastColumn])
    }

    /// Re-clusters line `i` when the clusters on either side of a join point form one cluster.
    private mutating func normalizeJoins(_ i: Int, at joins: [Int]) {
        let chars = lines[i]
        for j in joins where j > 0 && j < chars.count {
            if (String(chars[j - 1]) + String(chars[j])).count != 2 { normalizeLine(i); return }
        }
    }

    /// Re-clusters a line when a join changed grapheme boundaries (e.g. "e" + U+0301).
    private mutating func normalizeLine(_ i: Int) {
        let s = String(lines[i])
        if s.count == lines[i].count { return }
        let before = String(lines[i][..<min(cursor.column, lines[i].count)])
        lines[i] = Array(s)
        if cursor.line == i { cursor.column = min(lines[i].count, before.count) }
    }

    /// Backspace: deletes the cluster before the cursor, joining lines at a line start.
    public mutating func deleteBackward() {
        preferredX = nil
        if cursor.column > 0 {
            lines[cursor.line].remove(at: cursor.column - 1)
            cursor.column -= 1
            normalizeJoins(cursor.line, at: [cursor.column])
        } else if cursor.line > 0 {
            let rest = lines.remove(at: cursor.line)
            cursor.line -= 1
            cursor.column = lines[cursor.line].count
            lines[cursor.line].append(contentsOf: rest)
            normalizeJoins(cursor.line, at: [cursor.column])
        }
    }

    /// Delete: removes the cluster under the cursor, joining the next line at a line end.
    public mutating func deleteForward() {
        preferredX = nil
        if cursor.column < lines[cursor.line].count {
            lines[cursor.line].remove(at: cursor.column)
            normalizeJoins(cursor.line, at: [cursor.column])
        } else if cursor.line + 1 < lines.count {
            let next = lines.remove(at: cursor.line + 1)
            lines[cursor.line].append(contentsOf: next)
            normalizeJoins(cursor.line, at: [cursor.column])
        }
    }

    /// Ctrl-W / Alt-Backspace: deletes back to the start of the previous word.
    public mutating func deleteWordBackward() {
        let target = wordBoundaryBackward(from: cursor)
        deleteRange(from: target, to: cursor)
    }

    /// Alt-D / Ctrl-Delete: deletes to the end of the next word.
    public mutating func deleteWordForward() {
        let target = wordBoundaryForward(from: cursor)
        deleteRange(from: cursor, to: target)
    }

    /// Ctrl-U: deletes from the start of the line to the cursor.
    public mutating func deleteToLineStart() {
        deleteRange(from: Position(line: cursor.line, column: 0), to: cursor)
    }

    /// Ctrl-K: deletes from the cursor to the end of the line (the newline when already there).
    public mutating func deleteToLineEnd() {
        if cursor.column == lines[cursor.line].count { deleteForward(); return }
        deleteRange(from: cursor, to: Position(line: cursor.line, column: lines[cursor.line].count))
    }

    public mutating func clear() { setText("") }

    private mutating func deleteRange(from a: Position, to b: Position) {
        preferredX = nil
        guard a < b else { return }
        if a.line == b.line {
            lines[a.line].removeSubrange(a.column..<b.column)
        } else {
            let tail = lines[b.line][b.column...]
            lines[a.line].removeSubrange(a.column...)
            lines[a.line].append(contentsOf: tail)
            lines.removeSubrange((a.line + 1)...b.line)
        }
        cursor = a
        normalizeJoins(a.line, at: [a.column])
    }

    // MARK: - word boundaries

    enum CharClass { case space, word, ideograph, punctuation }

    static func charClass(_ c: Character) -> CharClass {
        if c.isWhitespace { return .space }
        if let s = c.unicodeScalars.first, CellWidth.isEastAsianWide(s.value), c.isLetter { return .ideograph }
        if c.isLetter || c.isNumber || c == "_" { return .word }
        return .punctuation
    }

    /// Start of the previous word: skips spaces (and a line break), then one run of the same class.
    func wordBoundaryBackward(from p: Position) -> Position {
        var line = p.line, col = p.column
        if col == 0 { return line > 0 ? Position(line: line - 1, column: lines[line - 1].count) : p }
        let chars = lines[line]
        while col > 0, Self.charClass(chars[col - 1]) == .space { col -= 1 }
        if col > 0 {
            let cls = Self.charClass(chars[col - 1])
            while col > 0, Self.charClass(chars[col - 1]) == cls { col -= 1 }
        }
        line = p.line
        return Position(line: line, column: col)
    }

    /// End of the next word: skips spaces, then one run of the same class.
    func wordBoundaryForward(from p: Position) -> Position {
        let chars = lines[p.line]
        var col = p.column
        if col == chars.count { return p.line + 1 < lines.count ? Position(line: p.line + 1, column: 0) : p }
        while col < chars.count, Self.charClass(chars[col]) == .space { col += 1 }
        if col < chars.count {
            let cls = Self.charClass(chars[col])
            while col < chars.count, Self.charClass(chars[col]) == cls { col += 1 }
        }
        return Position(line: p.line, column: col)
    }

    // MARK: - cursor movement

    public mutating func moveLeft() {
        preferredX = nil
        if cursor.column > 0 { cursor.column -= 1 } else if cursor.line > 0 {
            cursor.line -= 1
            cursor.column = lines[cursor.line].count
        }
    }

    public mutating func moveRight() {
        preferredX = nil
        if cursor.column < lines[cursor.line].count { cursor.column += 1 } else if cursor.line + 1 < lines.count {
            cursor.line += 1
            cursor.column = 0
        }
    }

    public mutating func moveWordLeft() { preferredX = nil; cursor = wordBoundaryBackward(from: cursor) }
    public mutating func moveWordRight() { preferredX = nil; cursor = wordBoundaryForward(from: cursor) }

    /// Home: start of the visual row; pressed again (already there), start of the line.
    public mutating func moveHome(width: Int) {
        preferredX = nil
        let rows = visualRows(width: width)
        let (r, _) = cursorVisual(rows: rows)
        let start = rows[r].start
        cursor.column = cursor.column == start ? 0 : start
    }

    /// End: end of the visual row; pressed again, end of the line.
    public mutating func moveEnd(width: Int) {
        preferredX = nil
        let rows = visualRows(width: width)
        let (r, _) = cursorVisual(rows: rows)
        let row = rows[r]
        let lineEnd = lines[cursor.line].count
        // the end of a wrapped row is the start of the next one; stop one cluster before it
        let rowEnd = row.end < lineEnd ? max(row.start, row.end - 1) : row.end
        cursor.column = cursor.column == rowEnd ? lineEnd : rowEnd
    }

    public mutating func moveToStart() { preferredX = nil; cursor = Position(line: 0, column: 0) }
    public mutating func moveToEnd() { preferredX = nil; cursor = Position(line: lines.count - 1, column: lines[lines.count - 1].count) }

    /// Up/down by visual rows of the wrapped view, keeping the visual x.
    public mutating func moveUp(width: Int) { moveVertically(by: -1, width: width) }
    public mutating func moveDown(width: Int) { moveVertically(by: 1, width: width) }

    public mutating func moveVertically(by delta: Int, width: Int) {
        let rows = visualRows(width: width)
        let (r, x) = cursorVisual(rows: rows)
        let wantX = preferredX ?? x
        let target = r + delta
        guard target >= 0, target < rows.count else {
            if delta < 0 { cursor.column = 0 } else { cursor.column = lines[cursor.line].count }
            preferredX = nil
            return
        }
        let row = rows[target]
        var col = row.start, cx = 0
        let chars = lines[row.line]
        let rowLast = row.end < chars.count ? row.end - 1 : row.end
        while col < rowLast {
            let w = CellWidth.of(chars[col])
            if cx + w > wantX { break }
            cx += w
            col += 1
        }
        cursor = Position(line: row.line, column: col)
        preferredX = wantX
    }

    /// Moves the cursor to a position (clamped).
    public mutating func setCursor(_ p: Position) {
        preferredX = nil
        let line = min(max(0, p.line), lines.count - 1)
        cursor = Position(line: line, column: min(max(0, p.column), lines[line].count))
    }

    // MARK: - wrapped view

    /// Lines soft-wrapped to `width` cells (character wrap, wide clusters never split).
    /// A row that is exactly full leaves room for the cursor on the next row only at line end.
    public func visualRows(width: Int) -> [VisualRow] {
        let width = max(width, 2)
        var rows: [VisualRow] = []
        for (i, chars) in lines.enumerated() {
            var start = 0, w = 0, text = ""
            var col = 0
            while col < chars.count {
                let cw = CellWidth.of(chars[col])
                if w + cw > width {
                    rows.append(VisualRow(line: i, start: start, end: col, text: text))
                    start = col; w = 0; text = ""
                }
                text.append(chars[col])
                w += cw
                col += 1
            }
            rows.append(VisualRow(line: i, start: start, end: chars.count, text: text))
            // the cursor at the end of a full row goes to a fresh row
            if w >= width, !chars.isEmpty {
                rows.append(VisualRow(line: i, start: chars.count, end: chars.count, text: ""))
            }
        }
        return rows
    }

    /// Row index and cell x of the cursor in `rows`.
    public func cursorVisual(rows: [VisualRow]) -> (row: Int, x: Int) {
        for (r, row) in rows.enumerated() where row.line == cursor.line {
            let isLastOfLine = r + 1 >= rows.count || rows[r + 1].line != cursor.line
            if cursor.column >= row.start && (cursor.column < row.end || (isLastOfLine && cursor.column <= row.end)) {
                let x = CellWidth.of(String(lines[row.line][row.start..<cursor.column]))
                return (r, x)
            }
        }
        return (max(0, rows.count - 1), 0)
    }

    public func cursorVisual(width: Int) -> (row: Int, x: Int) { cursorVisual(rows: visualRows(width: width)) }
}
