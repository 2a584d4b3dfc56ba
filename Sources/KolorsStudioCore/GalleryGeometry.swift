/// Where the gallery overlay puts its grid, details and full view.
public struct GalleryGeometry: Equatable, Sendable {
    public var box: Rect
    /// The thumbnail grid (or the full view image when full view is on).
    public var grid: Rect
    /// Prompt and parameters of the selected image.
    public var details: Rect
    public var thumbWidth: Int
    /// Image rows of a thumbnail (a caption row follows).
    public var thumbHeight: Int
    public var columns: Int
    public var rows: Int
    public var pageSize: Int { max(1, columns * rows) }

    public static func compute(_ layout: StudioLayout) -> GalleryGeometry {
        let box = layout.overlayArea
        let inner = box.inner
        var grid = inner, details: Rect
        if inner.width >= 90 {
            let dw = min(44, inner.width / 3)
            grid.width = inner.width - dw - 1
            details = Rect(x: grid.maxX + 1, y: inner.y, width: dw, height: inner.height)
        } else {
            let dh = min(7, max(3, inner.height / 3))
            grid.height = inner.height - dh
            details = Rect(x: inner.x, y: grid.maxY, width: inner.width, height: dh)
        }
        let thumbWidth = 18, thumbHeight = 8
        let columns = max(1, (grid.width + 1) / (thumbWidth + 1))
        let rows = max(1, (grid.height) / (thumbHeight + 1))
        return GalleryGeometry(box: box, grid: grid, details: details, thumbWidth: thumbWidth, thumbHeight: thumbHeight,
                               columns: columns, rows: rows)
    }

    /// First entry index shown on the page that holds `selected`.
    public func pageStart(selected: Int) -> Int { (max(0, selected) / pageSize) * pageSize }

    /// Cell rectangle of the image part of thumbnail `i` on the page starting at `start`.
    public func thumbRect(index i: Int, pageStart start: Int) -> Rect? {
        let k = i - start
        guard k >= 0, k < pageSize else { return nil }
        let col = k % columns, row = k / columns
        return Rect(x: grid.x + col * (thumbWidth + 1), y: grid.y + row * (thumbHeight + 1), width: thumbWidth, height: thumbHeight)
    }
}
