import KolorsImageIO

/// One terminal cell of a rendered frame.
public struct Cell: Equatable, Sendable {
    /// A grapheme cluster; "" marks the second cell of a wide cluster.
    public var text: String
    public var role: StyleRole
    public init(_ text: String = " ", _ role: StyleRole = .base) {
        self.text = text
        self.role = role
    }
}

/// Where an image goes. The shell draws it (sixel or half blocks) fitted inside `rect`, centred.
public struct ImagePlacement: Equatable, Sendable {
    public enum Source: Equatable, Sendable {
        /// The live preview (or a loaded image) held in the state.
        case frame(PreviewFrame)
        /// A PNG in a gallery session, loaded (and cached) by the shell.
        case file(String)
    }
    public var rect: Rect
    public var source: Source
    public init(rect: Rect, source: Source) {
        self.rect = rect
        self.source = source
    }
    /// A stable identity for caching encoded output.
    public var cacheKey: String {
        switch source {
        case .frame(let f): "frame:\(f.serial)@\(rect)"
        case .file(let p): "file:\(p)@\(rect)"
        }
    }
}

/// A full screen of cells plus image placements and the cursor; what `StudioView.render` makes.
public struct Frame: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var cells: [Cell]
    /// Where the terminal cursor should be (focused editor), or nil to hide it.
    public var cursor: (x: Int, y: Int)?
    public var images: [ImagePlacement] = []

    public init(width: Int, height: Int, role: StyleRole = .base) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: Cell(" ", role), count: self.width * self.height)
    }

    public static func == (a: Frame, b: Frame) -> Bool {
        a.width == b.width && a.height == b.height && a.cells == b.cells && a.images == b.images
            && a.cursor?.x == b.cursor?.x && a.cursor?.y == b.cursor?.y
    }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set { cells[y * width + x] = newValue }
    }

    /// Writes `text` at (x, y), clipped to `maxX` (exclusive, default the frame's width). Wide
    /// clusters that do not fit are replaced by a space. Returns the x after the text.
    @discardableResult
    public mutating func put(_ text: String, x: Int, y: Int, role: StyleRole, maxX: Int? = nil) -> Int {
        guard y >= 0, y < height else { return x }
        let limit = min(maxX ?? width, width)
        var cx = x
        for c in text {
            if c == "\n" || c == "\r\n" { break }
            let w = CellWidth.of(c)
            if w == 0 {
                // attach zero-width clusters to the previous cell so they are not lost
                var px = cx - 1
                if px >= 0, px < width, self[px, y].text.isEmpty { px -= 1 }
                if px >= 0, px < limit { self[px, y].text += String(c) }
                continue
            }
            if cx + w > limit {
                if cx < limit && cx >= 0 { set(cx, y, Cell(" ", role)) }
                return limit
            }
            if cx >= 0 {
                set(cx, y, Cell(String(c), role))
                if w == 2 {
                    release(cx + 1, y)
                    self[cx + 1, y] = Cell("", role)
                }
            }
            cx += w
        }
        return cx
    }

    public mutating func fill(_ r: Rect, role: StyleRole, char: String = " ") {
        for y in max(0, r.y)..<min(height, r.maxY) {
            for x in max(0, r.x)..<min(width, r.maxX) { set(x, y, Cell(char, role)) }
        }
    }

    /// Frees cell (x, y) from any wide cluster it belongs to (the other half becomes a space).
    mutating func release(_ x: Int, _ y: Int) {
        guard x >= 0, x < width else { return }
        let c = self[x, y]
        if c.text.isEmpty {
            if x > 0 { self[x - 1, y] = Cell(" ", self[x - 1, y].role) }
        } else if CellWidth.of(c.text) == 2, x + 1 < width, self[x + 1, y].text.isEmpty {
            self[x + 1, y] = Cell(" ", self[x + 1, y].role)
        }
    }

    /// Sets a one-cell-wide or the first cell of a wide cluster, keeping neighbours consistent.
    mutating func set(_ x: Int, _ y: Int, _ cell: Cell) {
        guard x >= 0, x < width, y >= 0, y < height else { return }
        release(x, y)
        self[x, y] = cell
    }

    /// A box with a title on the top border and an optional note on the right of it and on the bottom border.
    public mutating func box(_ r: Rect, title: String, role: StyleRole, titleRole: StyleRole = .paneTitle,
                             topRight: (String, StyleRole)? = nil, bottom: (String, StyleRole)? = nil) {
        guard r.width >= 2, r.height >= 2 else { return }
        let top = r.y, bot = r.maxY - 1, left = r.x, right = r.maxX - 1
        for x in (left + 1)..<right {
            put("─", x: x, y: top, role: role)
            put("─", x: x, y: bot, role: role)
        }
        for y in (top + 1)..<bot {
            put("│", x: left, y: y, role: role)
            put("│", x: right, y: y, role: role)
        }
        put("┌", x: left, y: top, role: role)
        put("┐", x: right, y: top, role: role)
        put("└", x: left, y: bot, role: role)
        put("┘", x: right, y: bot, role: role)
        var tx = left + 2
        if !title.isEmpty, r.width > 6 {
            tx = put(" " + CellWidth.truncate(title, to: r.width - 6) + " ", x: left + 1, y: top, role: titleRole, maxX: right)
        }
        if let (t, tr) = topRight, r.width > 10 {
            let text = " " + t + " "
            let w = CellWidth.of(text)
            let x = right - w
            if x > tx + 1 { put(text, x: x, y: top, role: tr, maxX: right) }
        }
        if let (b, br) = bottom, r.width > 6 {
            put(" " + CellWidth.truncate(b, to: r.width - 6) + " ", x: left + 1, y: bot, role: br, maxX: right)
        }
    }

    /// The text of row `y` (for tests and debugging).
    public func row(_ y: Int) -> String {
        var s = ""
        for x in 0..<width { s += self[x, y].text }
        return s
    }

    public var text: String { (0..<height).map { row($0) }.joined(separator: "\n") }
}
