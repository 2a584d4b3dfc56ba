import KolorsStudioCore
import Testing

@Suite("Layout")
struct LayoutTests {
    @Test("panes stay inside the screen, never overlap, and images never reach the last row")
    func manySizes() {
        var checked = 0
        for width in Array(stride(from: 60, through: 260, by: 7)) + [80, 99, 100] {
            for height in Array(stride(from: 20, through: 90, by: 5)) + [24, 33] {
                for banner in [false, true] {
                    let l = StudioLayout.compute(width: width, height: height, banner: banner)
                    #expect(!l.tooSmall)
                    let panes = l.panes
                    for p in panes {
                        #expect(p.x >= 0 && p.y >= 0 && p.maxX <= width && p.maxY <= height, "\(p) in \(width)×\(height)")
                        #expect(!p.isEmpty)
                    }
                    for i in panes.indices {
                        for j in panes.indices where j > i {
                            #expect(!panes[i].intersects(panes[j]), "\(panes[i]) ∩ \(panes[j]) at \(width)×\(height)")
                        }
                    }
                    #expect(l.status.y == height - 1)
                    if let p = l.preview { #expect(p.maxY <= height - 2, "preview touches the last rows") }
                    #expect(l.prompt.inner.height >= 2)
                    #expect(l.negativeFolded ? l.negative.height == 1 : l.negative.inner.height >= 1)
                    #expect(l.params.inner.height == l.classicParamRows)
                    #expect(l.overlayArea.maxY <= height - 2)
                    // every size the studio runs at has a preview pane (compact below 100 columns when needed)
                    #expect(l.preview != nil, "no preview at \(width)×\(height)")
                    if let p = l.preview { #expect(p.inner.width >= 16 && p.inner.height >= 4, "preview \(p) at \(width)×\(height)") }
                    let g = GalleryGeometry.compute(l)
                    #expect(g.columns >= 1 && g.rows >= 1)
                    for k in 0..<g.pageSize {
                        let r = g.thumbRect(index: k, pageStart: 0)!
                        #expect(r.x >= g.grid.x && r.maxX <= g.grid.maxX && r.maxY + 1 <= g.grid.maxY + 1)
                    }
                    checked += 1
                }
            }
        }
        #expect(checked > 400)
    }

    @Test("below the minimum the layout says too small", arguments: [(59, 40), (120, 19), (10, 5), (0, 0), (1, 1)])
    func tooSmall(width: Int, height: Int) {
        #expect(StudioLayout.compute(width: width, height: height, banner: false).tooSmall)
    }

    @Test("wide terminals put the preview beside the editors, narrow ones below")
    func arrangement() {
        let wide = StudioLayout.compute(width: 160, height: 50, banner: false)
        #expect(wide.preview!.x > wide.prompt.maxX - 1)
        let narrow = StudioLayout.compute(width: 80, height: 50, banner: false)
        #expect(narrow.preview!.y >= narrow.params.maxY)
        let banner = StudioLayout.compute(width: 120, height: 40, banner: true)
        #expect(banner.banner == Rect(x: 0, y: 1, width: 120, height: 1))
        #expect(banner.prompt.y == 2)
    }
}
