/// A rectangle of terminal cells.
public struct Rect: Hashable, Sendable, CustomStringConvertible {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }
    public static let zero = Rect(x: 0, y: 0, width: 0, height: 0)
    public var maxX: Int { x + width }
    public var maxY: Int { y + height }
    public var isEmpty: Bool { width <= 0 || height <= 0 }
    /// The inside of a bordered box.
    public var inner: Rect { Rect(x: x + 1, y: y + 1, width: max(0, width - 2), height: max(0, height - 2)) }
    public func contains(x px: Int, y py: Int) -> Bool { px >= x && px < maxX && py >= y && py < maxY }
    public func intersects(_ o: Rect) -> Bool { x < o.maxX && o.x < maxX && y < o.maxY && o.y < maxY }
    public var description: String { "(\(x),\(y) \(width)×\(height))" }
}

/// Where every pane goes for a terminal size. Computed, never stored: a resize just recomputes.
public struct StudioLayout: Equatable, Sendable {
    public static let minWidth = 60
    public static let minHeight = 20

    public var width: Int
    public var height: Int
    /// The terminal is below the minimum: only a message is drawn.
    public var tooSmall: Bool
    public var title: Rect
    /// The notice row under the title (demo checkpoint, engine missing), when shown.
    public var banner: Rect?
    public var prompt: Rect
    public var negative: Rect
    public var params: Rect
    /// The preview box (with border); nil when there is no room for one.
    public var preview: Rect?
    /// Job queue / history strip.
    public var queue: Rect
    /// Status line: always the last row (images never touch it).
    public var status: Rect
    /// Area for full-screen overlays (gallery): between the title and the queue strip.
    public var overlayArea: Rect
    /// Rows of content in the parameters box (the classic fields; IP-Adapter and LoRA rows come on top).
    public static let paramRows = 5
    /// The compact layout's classic rows: Strength gets a row of its own in the narrower pane.
    public static let compactParamRows = 6
    /// Rows the prompt and negative editors keep when the parameters pane grows (it scrolls beyond that).
    public static let editorsComfortable = 10
    public static let editorsMinimum = 7
    /// The compact layout's left column (editors and parameters) is at least this wide; the preview gets the rest.
    public static let compactLeftWidth = 40

    /// Whether this is the compact arrangement: below 100 columns where the editors leave no (or
    /// little) room under them (80×24, 60×20, 99×33), the preview goes beside a narrower left column, the
    /// negative prompt folds to one row (a box while it has focus) and the parameters pane puts
    /// Strength on a row of its own and folds the IP-Adapter rows into one while it is off.
    public var compact = false
    /// The negative prompt is drawn as one folded row (compact layout, not focused).
    public var negativeFolded = false
    /// Classic rows in the parameters pane (`paramRows`, or `compactParamRows` when compact).
    public var classicParamRows: Int { compact ? Self.compactParamRows : Self.paramRows }

    /// `extraParamRows`: rows the parameters pane would like beyond the classic rows (reference image,
    /// LoRA list). It gets them while the editors keep `editorsComfortable` rows, and scrolls beyond.
    /// `compactExtraParamRows`: the same for the compact layout's folded pane (nil: as `extraParamRows`).
    /// `negativeFocused`: the compact layout unfolds the negative prompt while it has focus.
    public static func compute(width: Int, height: Int, banner: Bool, extraParamRows: Int = 0,
                               compactExtraParamRows: Int? = nil, negativeFocused: Bool = false) -> StudioLayout {
        var l = StudioLayout(width: width, height: height, tooSmall: false, title: .zero, banner: nil, prompt: .zero,
                             negative: .zero, params: .zero, preview: nil, queue: .zero, status: .zero, overlayArea: .zero)
        guard width >= minWidth, height >= minHeight else {
            l.tooSmall = true
            return l
        }
        l.title = Rect(x: 0, y: 0, width: width, height: 1)
        var top = 1
        if banner {
            l.banner = Rect(x: 0, y: 1, width: width, height: 1)
            top = 2
        }
        l.status = Rect(x: 0, y: height - 1, width: width, height: 1)
        l.queue = Rect(x: 0, y: height - 2, width: width, height: 1)
        let mainHeight = height - 2 - top
        l.overlayArea = Rect(x: 0, y: top, width: width, height: mainHeight)

        // Preview: square images are 2 columns per row (cells are about twice as tall as wide).
        let squareWidth = 2 * (mainHeight - 2) + 2
        var leftWidth = width
        if width >= 100 {
            let right = min(width - 48, squareWidth)
            if right >= 30 {
                leftWidth = width - right
                l.preview = Rect(x: leftWidth, y: top, width: right, height: mainHeight)
            }
        }
        var paramsHeight = paramRows + 2
        if extraParamRows > 0 {
            let room = max(paramsHeight, mainHeight - editorsComfortable)
            paramsHeight = max(paramRows + 2, min(paramsHeight + extraParamRows, room, mainHeight - editorsMinimum))
        }
        var editorsHeight = mainHeight - paramsHeight
        if l.preview == nil {
            // stacked: the editors and parameters take what they need, the preview the rest
            let wanted = min(editorsHeight, 14)
            let rest = editorsHeight - wanted
            if rest >= 6 {
                l.preview = Rect(x: 0, y: top + wanted + paramsHeight, width: width, height: rest)
                editorsHeight = wanted
            }
            // the compact arrangement when the stacked preview is missing or shows a smaller image
            let compact = compactLayout(l, top: top, mainHeight: mainHeight, squareWidth: squareWidth,
                                        extraParamRows: compactExtraParamRows ?? extraParamRows, negativeFocused: negativeFocused)
            if squareSide(compact.preview) > squareSide(l.preview) { return compact }
        }
        let promptHeight = max(4, (editorsHeight * 3 + 2) / 5)
        let negativeHeight = max(3, editorsHeight - promptHeight)
        l.prompt = Rect(x: 0, y: top, width: leftWidth, height: promptHeight)
        l.negative = Rect(x: 0, y: top + promptHeight, width: leftWidth, height: negativeHeight)
        l.params = Rect(x: 0, y: top + promptHeight + negativeHeight, width: leftWidth, height: paramsHeight)
        return l
    }

    /// The side, in half-block pixels, of the largest square image a preview box shows (0 without one).
    static func squareSide(_ preview: Rect?) -> Int {
        guard let p = preview?.inner, !p.isEmpty else { return 0 }
        return min(p.width, 2 * p.height)
    }

    /// The compact arrangement: the preview on the right (square when it fits), and on the left the
    /// prompt, the negative prompt folded to one row (a 3-row box while focused) and the parameters.
    static func compactLayout(_ base: StudioLayout, top: Int, mainHeight: Int, squareWidth: Int, extraParamRows: Int,
                              negativeFocused: Bool) -> StudioLayout {
        var l = base
        l.compact = true
        let width = l.width
        let right = max(0, min(squareWidth, width - compactLeftWidth))
        let leftWidth = width - right
        l.preview = Rect(x: leftWidth, y: top, width: right, height: mainHeight)
        l.negativeFolded = !negativeFocused
        let negativeHeight = negativeFocused ? 3 : 1
        let promptMinimum = 4
        let classic = compactParamRows + 2
        let room = mainHeight - promptMinimum - negativeHeight
        let paramsHeight = max(min(classic, room), min(classic + max(0, extraParamRows), room))
        let promptHeight = mainHeight - negativeHeight - paramsHeight
        l.prompt = Rect(x: 0, y: top, width: leftWidth, height: promptHeight)
        l.negative = Rect(x: 0, y: top + promptHeight, width: leftWidth, height: negativeHeight)
        l.params = Rect(x: 0, y: top + promptHeight + negativeHeight, width: leftWidth, height: paramsHeight)
        return l
    }

    /// A centred overlay box of up to `width` × `height`, inside the overlay area.
    public func centred(width w: Int, height h: Int) -> Rect {
        let area = overlayArea
        let cw = min(w, area.width - 2), ch = min(h, area.height)
        return Rect(x: area.x + (area.width - cw) / 2, y: area.y + (area.height - ch) / 2, width: max(0, cw), height: max(0, ch))
    }

    /// Every pane rectangle that is shown (for overlap checks).
    public var panes: [Rect] {
        [title, prompt, negative, params, queue, status] + [banner, preview].compactMap { $0 }
    }
}
