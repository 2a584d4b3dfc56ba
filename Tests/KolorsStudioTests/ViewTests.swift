import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
import Testing

@Suite("View")
struct ViewTests {
    /// Every row must add up to exactly the frame width in cells (no wide character hanging over).
    func checkRows(_ f: Frame) {
        for y in 0..<f.height {
            var w = 0
            var x = 0
            while x < f.width {
                let c = f[x, y]
                if c.text.isEmpty { Issue.record("orphan continuation cell at \(x),\(y)"); return }
                let cw = max(1, CellWidth.of(c.text))
                if cw == 2 {
                    #expect(x + 1 < f.width && f[x + 1, y].text.isEmpty, "wide cell without continuation at \(x),\(y)")
                }
                w += cw
                x += cw
            }
            #expect(w == f.width)
        }
    }

    @Test("rendering at many sizes and in every mode gives well-formed frames")
    func manySizes() {
        var base = Harness().state
        base.prompt.setText(String(repeating: "一只可爱的小猫 cute cat 🐱, ", count: 30))
        base.negative.setText("低质量, blurry")
        base.preview = PreviewFrame(image: RGBImage(width: 16, height: 16), caption: "#1 step 3/25", serial: 1)
        base.gallery.entries = (1...30).map { GalleryEntry(file: "\($0).png", parameters: GenerationParameters(prompt: "猫 \($0)")) }
        base.jobs = [Job(id: 1, parameters: GenerationParameters())]
        base.jobs[0].phase = .running
        base.message = StatusMessage(text: "a message with 中文", kind: .info, expires: nil)
        for (w, h) in [(60, 20), (61, 21), (80, 24), (99, 30), (100, 30), (120, 40), (200, 60), (59, 20), (30, 5), (1, 1)] {
            for mode in 0..<9 {
                var s = base
                s.width = w
                s.height = h
                switch mode {
                case 1: s.helpVisible = true
                case 2: s.galleryVisible = true
                case 3: s.galleryVisible = true; s.gallery.fullView = true; s.gallery.selected = 7
                case 4: s.keysForLinePrompt()
                case 5: s.fullPreview = true
                case 6:
                    s.messageLog = (0..<60).map { StatusMessage(text: "message \($0) 可图 " + String(repeating: "word ", count: $0), kind: .warning, expires: nil) }
                    s.logVisible = true
                case 7: s.confirmingQuit = QuitConfirmation(running: 1, queued: 2, unsaved: 1)
                case 8: s.focus = .negative
                default: break
                }
                let f = StudioView.render(s)
                #expect(f.width == w && f.height == h)
                checkRows(f)
                for img in f.images {
                    #expect(img.rect.maxY <= h - 1, "an image must never touch the last row")
                    #expect(img.rect.maxX <= w)
                }
                if let c = f.cursor { #expect(c.x >= 0 && c.x < w && c.y >= 0 && c.y < h) }
            }
        }
    }

    @Test("the help overlay lists every key binding")
    func helpListsEveryKey() {
        var s = Harness(width: 160, height: 70).state
        s.helpVisible = true
        let text = StudioView.render(s).text
        for section in KeyMap.sections {
            #expect(text.contains(section.title))
            for b in section.bindings { #expect(text.contains(b.keys), "help misses \(b.keys)") }
        }
        for required in ["Tab / Shift-Tab", "Ctrl-G", "Esc", "Ctrl-O", "F1", "Ctrl-Q"] { #expect(text.contains(required)) }
        // a small screen scrolls instead
        var small = Harness(width: 80, height: 24).state
        small.helpVisible = true
        var seen = ""
        for _ in 0..<80 {
            seen += StudioView.render(small).text
            _ = reduce(&small, .key(.down))
        }
        for section in KeyMap.sections { for b in section.bindings { #expect(seen.contains(b.keys)) } }
    }

    @Test("the cursor sits after wide characters in the prompt")
    func cursorPosition() {
        var h = Harness()
        h.type("可图ab")
        let f = StudioView.render(h.state)
        let inner = h.state.layout.prompt.inner
        #expect(f.cursor?.x == inner.x + 6)
        #expect(f.cursor?.y == inner.y)
        #expect(f.row(inner.y).contains("可图ab"))
    }

    @Test("overlays hide images under them; the gallery shows thumbnails instead of the preview")
    func imagesAndOverlays() {
        var s = Harness().state
        s.preview = PreviewFrame(image: RGBImage(width: 8, height: 8), caption: "x", serial: 1)
        #expect(StudioView.render(s).images.count == 1)
        s.helpVisible = true
        #expect(StudioView.render(s).images.isEmpty)
        s.helpVisible = false
        s.galleryVisible = true
        s.gallery.entries = [GalleryEntry(file: "a.png", parameters: GenerationParameters()),
                             GalleryEntry(file: "b.png", parameters: GenerationParameters())]
        let f = StudioView.render(s)
        #expect(f.images.count == 2)
        #expect(f.images.allSatisfy { if case .file = $0.source { true } else { false } })
        s.previewMode = "none"
        s.galleryVisible = false
        #expect(StudioView.render(s).images.isEmpty)
    }
}

extension StudioState {
    mutating func keysForLinePrompt() {
        _ = reduce(&self, .key(.ctrl("p")))
        _ = reduce(&self, .paste("/some/very/long/path/可图/image.png"))
    }
}
