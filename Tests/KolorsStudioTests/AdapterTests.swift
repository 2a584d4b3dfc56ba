import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
import Testing

/// The repository's test fixtures.
private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

extension Harness {
    /// A studio started with `--ip-adapter /models/ip` (and optionally `--lora` / `--lora-dir`), cwd /work.
    static func adapters(ip: Bool = true, loras: [GenerationParameters.LoRASettings] = [], loraDirs: [String] = [], width: Int = 120,
                         height: Int = 40) -> Harness {
        var h = Harness(width: width, height: height)
        h.send(.configureAdapters(AdapterOptions(ipAdapter: ip ? IPAdapterConfig(path: "/models/ip", imageEncoder: "/models/enc") : nil,
                                                 loras: loras, loraDirs: loraDirs, workingDirectory: "/work")))
        return h
    }

    /// The ids and paths of the LoRA checks asked for so far.
    var loraChecks: [(id: Int, path: String, dirs: [String])] {
        effects.compactMap { if case .inspectLoRA(let id, let path, let dirs) = $0 { (id, path, dirs) } else { nil } }
    }

    @discardableResult
    mutating func addLoRA(_ spec: String) -> [Effect] {
        state.focus = .loras
        keys(.character("a"))
        send(.paste(spec))
        return keys(.enter)
    }
}

@Suite("IP-Adapter and LoRA fields")
struct AdapterTests {
    static let weights = ["peft_lora": Float(0.7)]

    @Test("--lora preloads the list; the hash is computed in the background and lands in the entry and the job")
    func preloadAndHash() {
        var h = Harness.adapters(loras: [.init(path: "/loras/peft_lora.safetensors", weight: 0.7)])
        #expect(h.state.loras.count == 1)
        #expect(h.state.loras[0].status == .checking)
        #expect(h.effects.contains(.inspectLoRA(id: 1, path: "/loras/peft_lora.safetensors", searchDirs: [])))
        #expect(h.state.currentParameters.loras.map(\.path) == ["/loras/peft_lora.safetensors"], "a known path is used while it is hashed")
        h.send(.loraInspected(id: 1, .found(path: "/loras/peft_lora.safetensors", hash: "ab12cd34ef56")))
        #expect(h.state.loras[0].status == .ready)
        #expect(h.state.loras[0].settings.hash == "ab12cd34ef56")
        #expect(h.state.loraSearchDirs == ["/loras"])
        guard case .startJob(let job) = h.keys(.ctrl("g")).first else { Issue.record("no job"); return }
        #expect(job.parameters.loras == [.init(path: "/loras/peft_lora.safetensors", weight: 0.7, hash: "ab12cd34ef56")])
        // the job strip says so
        #expect(StudioView.render(h.state).text.contains("[LoRA peft_lora 0.70]"))
        // and the saved metadata carries the tag and the hash
        let text = ImageMetadata.a1111Parameters(job.parameters)
        #expect(text.contains("<lora:peft_lora:0.7>") && text.contains("Lora hashes: \"peft_lora: ab12cd34ef56\""))
    }

    @Test("a adds a LoRA through a path prompt (weight optional); d and Del remove; duplicates and bad files are refused")
    func addAndRemove() {
        var h = Harness.adapters()
        h.state.focus = .loras
        #expect(StudioView.render(h.state).text.contains("none · a: add a .safetensors"))
        h.keys(.enter)                                   // Enter on the empty list opens the prompt too
        #expect(h.state.linePrompt?.purpose == .addLoRA)
        h.keys(.escape)
        var e = h.addLoRA("loras/style.safetensors:0.8")
        #expect(e == [.inspectLoRA(id: 1, path: "/work/loras/style.safetensors", searchDirs: [])], "relative to the working folder")
        #expect(h.state.loras.map(\.settings.weight) == [0.8])
        #expect(h.state.focus == .loras && h.state.loraSelected == 0)
        h.send(.loraInspected(id: 1, .found(path: "/work/loras/style.safetensors", hash: "111111111111")))
        #expect(h.state.message?.text.contains("added LoRA style 0.80 (hash 111111111111)") == true)
        e = h.addLoRA("~/detail.safetensors")
        #expect(h.state.loras.map(\.settings.weight) == [0.8, 1.0], "the weight defaults to 1")
        #expect(h.state.loraSelected == 1)
        h.send(.loraInspected(id: 2, .found(path: NSHomeDirectory() + "/detail.safetensors", hash: "222222222222")))
        // the same file again: refused
        #expect(h.addLoRA("/work/loras/style.safetensors").isEmpty)
        #expect(h.state.loras.count == 2 && h.state.loraSelected == 0)
        #expect(h.state.message?.text.contains("already in the list") == true)
        // a file that does not exist (or is no LoRA) is dropped with an error
        h.addLoRA("/nope/missing.safetensors")
        #expect(h.state.loras.count == 3)
        h.send(.loraInspected(id: 3, .notFound(searched: ["/work/loras"])))
        #expect(h.state.loras.count == 2)
        #expect(h.state.message?.kind == .error && h.state.message?.text.contains("cannot add /nope/missing.safetensors") == true)
        h.addLoRA("/tmp/readme.safetensors")
        h.send(.loraInspected(id: 4, .failed("not a safetensors LoRA (bad header)")))
        #expect(h.state.loras.map(\.name) == ["style", "detail"])
        // remove: d, then Del
        h.state.loraSelected = 1
        h.keys(.character("d"))
        #expect(h.state.loras.map(\.name) == ["style"] && h.state.loraSelected == 0)
        #expect(h.state.message?.text == "removed LoRA detail")
        h.keys(.delete)
        #expect(h.state.loras.isEmpty)
        h.keys(.delete)                                   // nothing left: no crash
        #expect(h.state.currentParameters.loras.isEmpty)
        // pasting a path into the list adds it; pasting a number sets the selected weight
        #expect(h.send(.paste("/x/pasted.safetensors:0.5")) == [.inspectLoRA(id: 5, path: "/x/pasted.safetensors", searchDirs: ["/work/loras", NSHomeDirectory()])])
        #expect(h.state.loras.map(\.name) == ["pasted"] && h.state.loras[0].settings.weight == 0.5)
        h.send(.paste("1.25"))
        h.keys(.enter)
        #expect(h.state.loras[0].settings.weight == 1.25)
    }

    @Test("LoRA weights: ←/→ step 0.05, PgUp/PgDn 0.5, typed values, always within −2…2")
    func weightLimits() {
        var h = Harness.adapters(loras: [.init(path: "/l/a.safetensors", weight: 0.8), .init(path: "/l/b.safetensors", weight: 1)])
        h.state.focus = .loras
        h.keys(.right)
        #expect(h.state.loras[0].settings.weight == 0.85)
        h.keys(.left, .left, .character("-"))
        #expect(h.state.loras[0].settings.weight == 0.7)
        h.keys(.pageUp, .pageUp, .pageUp, .right)
        #expect(h.state.loras[0].settings.weight == 2, "clamped at 2")
        for _ in 0..<100 { h.keys(.left) }
        #expect(h.state.loras[0].settings.weight == -2, "clamped at −2")
        #expect(StudioView.render(h.state).text.contains("-2.00"))
        h.keys(.pageDown)
        #expect(h.state.loras[0].settings.weight == -2)
        h.type("0.35")
        #expect(StudioView.render(h.state).text.contains("0.35▏"), "typed input shows in the row")
        h.keys(.enter)
        #expect(h.state.loras[0].settings.weight == 0.35)
        h.type("7"); h.keys(.enter)
        #expect(h.state.loras[0].settings.weight == 2)
        h.type("1..2"); h.keys(.enter)
        #expect(h.state.message?.text.contains("not a valid LoRA weight") == true)
        // ↓ selects the next LoRA; the weight keys then change that one
        h.keys(.down, .left)
        #expect(h.state.loraSelected == 1 && h.state.loras[1].settings.weight == 0.95 && h.state.loras[0].settings.weight == 2)
        // typing and then leaving the field applies the value
        h.type("1.5"); h.keys(.tab)
        #expect(h.state.loras[1].settings.weight == 1.5 && h.state.focus == .prompt)
        // weights from metadata are clamped too
        #expect(ParameterRules.clampLoRAWeight(5) == 2 && ParameterRules.clampLoRAWeight(-0.001) == 0)
        #expect(ParameterRules.formatWeight(-0.0) == "0.00")
    }

    @Test("LoRA order: Ctrl-↑/↓ and [ ] move the selected entry; ↑/↓ past the ends leave the list")
    func moveAndSelect() {
        var h = Harness.adapters(loras: ["a", "b", "c"].map { .init(path: "/l/\($0).safetensors") })
        h.state.focus = .loras
        h.keys(.down, .down)
        #expect(h.state.loraSelected == 2)
        h.keys(.ctrlUp)
        #expect(h.state.loras.map(\.name) == ["a", "c", "b"] && h.state.loraSelected == 1)
        h.keys(.character("["))
        #expect(h.state.loras.map(\.name) == ["c", "a", "b"] && h.state.loraSelected == 0)
        h.keys(.ctrlUp)                                     // already first
        #expect(h.state.loras.map(\.name) == ["c", "a", "b"])
        h.keys(.character("]"), .ctrlDown)
        #expect(h.state.loras.map(\.name) == ["a", "b", "c"] && h.state.loraSelected == 2)
        #expect(h.state.currentParameters.loras.map(\.path) == ["/l/a.safetensors", "/l/b.safetensors", "/l/c.safetensors"])
        h.keys(.down)
        #expect(h.state.focus == .prompt, "↓ past the last LoRA goes on to the next field")
        h.state.focus = .loras
        h.state.loraSelected = 0
        h.keys(.up)
        #expect(h.state.focus == .ipScale)
    }

    @Test("IP scale: default 1.0, step 0.05, PgUp/PgDn 0.5, typed, within 0…2; 0 turns the adapter off")
    func ipScaleLimits() {
        var h = Harness.adapters()
        #expect(h.state.ipScale == 1.0)
        h.state.focus = .ipScale
        h.keys(.right)
        #expect(h.state.ipScale == 1.05)
        h.keys(.pageUp, .pageUp)
        #expect(h.state.ipScale == 2)
        h.keys(.left)
        #expect(h.state.ipScale == 1.95)
        h.keys(.pageDown, .pageDown, .pageDown, .pageDown, .pageDown)
        #expect(h.state.ipScale == 0)
        h.keys(.left)
        #expect(h.state.ipScale == 0)
        h.type("0.6"); h.keys(.enter)
        #expect(h.state.ipScale == 0.6)
        h.type("3"); h.keys(.enter)
        #expect(h.state.ipScale == 2)
        h.state.ipImage.setText("/refs/cat.png")
        #expect(h.state.currentParameters.ipAdapter == .init(path: "/models/ip", image: "/refs/cat.png", scale: 2, imageEncoder: "/models/enc"))
        h.type("0"); h.keys(.enter)
        #expect(h.state.currentParameters.ipAdapter == nil, "scale 0 = off")
        #expect(StudioView.render(h.state).text.contains("IP scale  0.00  off"))
    }

    @Test("without --ip-adapter the reference field says how to turn it on and takes no text")
    func ipAdapterOff() {
        var h = Harness.adapters(ip: false)
        h.state.focus = .ipImage
        h.type("x.png")
        h.send(.paste("/a/b.png"))
        #expect(h.state.ipImage.isEmpty)
        #expect(h.state.message?.text.contains("--ip-adapter PATH") == true)
        let text = StudioView.render(h.state).text
        #expect(text.contains("Reference image  off: needs --ip-adapter PATH"))
        #expect(text.contains("IP-Adapter off: use --ip-adapter PATH"), "the hint at the bottom of the pane")
        #expect(h.state.currentParameters.ipAdapter == nil)
        h.keys(.enter)
        #expect(h.state.focus == .ipScale && !h.effects.contains { if case .checkReference = $0 { true } else { false } })
    }

    @Test("the reference image is checked on Enter and Tab: a thumbnail when it is a PNG, an error line when not")
    func referenceImage() {
        var h = Harness.adapters()
        h.state.focus = .ipImage
        h.type("refs/cat.png")
        var e = h.keys(.tab)
        #expect(e == [.checkReference(path: "/work/refs/cat.png")])
        #expect(h.state.ipImageStatus == .checking("/work/refs/cat.png"))
        h.send(.referenceChecked(path: "/work/refs/cat.png", .ok(width: 90, height: 70)))
        var f = StudioView.render(h.state)
        let thumb = f.images.first { $0.source == .file("/work/refs/cat.png") }
        #expect(thumb != nil, "a thumbnail of the reference image")
        if let r = thumb?.rect {
            let params = h.state.layout.params
            #expect(r.width == ParamsPane.thumbWidth && r.height == ParamsPane.thumbHeight)
            #expect(params.inner.x <= r.x && r.maxX <= params.inner.maxX && params.inner.y <= r.y && r.maxY <= params.inner.maxY)
        }
        #expect(f.text.contains("90×70 PNG"))
        #expect(h.state.currentParameters.ipAdapter?.image == "/work/refs/cat.png")
        // leaving unchanged asks for no new check; Enter always checks again
        h.state.focus = .ipImage
        #expect(h.keys(.tab).isEmpty)
        h.state.focus = .ipImage
        #expect(h.keys(.enter) == [.checkReference(path: "/work/refs/cat.png")])
        #expect(h.state.focus == .ipScale, "Enter moves on to the scale")
        // a file that is not a PNG
        h.state.focus = .ipImage
        h.keys(.ctrl("u"))
        h.send(.paste("/work/notes.txt"))
        e = h.keys(.enter)
        #expect(e == [.checkReference(path: "/work/notes.txt")])
        h.send(.referenceChecked(path: "/work/refs/cat.png", .ok(width: 90, height: 70)))   // a stale answer: ignored
        #expect(h.state.ipImageStatus == .checking("/work/notes.txt"))
        h.send(.referenceChecked(path: "/work/notes.txt", .failed("not a PNG file")))
        f = StudioView.render(h.state)
        #expect(f.text.contains("✗ not a PNG file: notes.txt"), "the error line")
        #expect(f.images.allSatisfy { $0.source != .file("/work/notes.txt") }, "no thumbnail")
        #expect(h.state.message?.kind == .error)
        // Ctrl-G refuses a job with an unusable reference
        let jobs = h.state.jobs.count
        h.state.focus = .ipImage
        #expect(h.keys(.ctrl("g")).isEmpty)
        #expect(h.state.jobs.count == jobs)
        #expect(h.state.message?.text.contains("not queued: reference image notes.txt") == true)
        // clearing the field turns the image prompt off
        h.state.focus = .ipImage
        h.keys(.ctrl("u"), .tab)
        #expect(h.state.ipImageStatus == .none && h.state.currentParameters.ipAdapter == nil)
        guard case .startJob = h.keys(.ctrl("g")).first else { Issue.record("no job"); return }
    }

    @Test("reloading our JSON record restores the reference image, scale and LoRAs (paths, weights, recorded hashes)")
    func reloadFromRecord() throws {
        var h = Harness.adapters(loras: [.init(path: "/old/x.safetensors")])
        var p = GenerationParameters(prompt: "a cat", seed: 9)
        p.ipAdapter = .init(path: "/elsewhere/ip", image: "/refs/ref.png", scale: 0.45)
        p.loras = [.init(path: "/loras/style.safetensors", weight: 0.8, hash: "aaaaaaaaaaaa"),
                   .init(path: "/loras/detail.safetensors", weight: -0.5, hash: "bbbbbbbbbbbb")]
        let record = ImageRecord(parameters: p)
        let parsed = try #require(ImageMetadata.parse(ImageMetadata.texts(for: record)))
        #expect(parsed.source == .kolors)
        h.effects = []
        let e = h.send(.parametersLoaded(parsed, from: "/s/00001-9.png"))
        #expect(h.state.prompt.text == "a cat")
        #expect(h.state.ipImage.text == "/refs/ref.png" && h.state.ipScale == 0.45)
        #expect(h.state.ipAdapter?.path == "/models/ip", "the session's adapter stays")
        #expect(h.state.loras.map(\.name) == ["style", "detail"])
        #expect(h.state.loras.map(\.settings.weight) == [0.8, -0.5])
        #expect(h.state.loras.map(\.recordedHash) == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"])
        #expect(e.contains(.checkReference(path: "/refs/ref.png")))
        // searched by path first, then by name in the folders of the LoRAs that were in the list
        #expect(h.loraChecks.map(\.path) == ["/loras/style.safetensors", "/loras/detail.safetensors"])
        #expect(h.loraChecks.allSatisfy { $0.dirs == ["/old"] })
        let ids = h.state.loras.map(\.id)
        h.send(.loraInspected(id: ids[0], .found(path: "/loras/style.safetensors", hash: "aaaaaaaaaaaa")))
        h.send(.loraInspected(id: ids[1], .found(path: "/old/detail.safetensors", hash: "cccccccccccc")))
        #expect(h.state.loras[1].settings.path == "/old/detail.safetensors", "found by name after it moved")
        #expect(h.state.message?.text.contains("hash cccccccccccc differs from the image's bbbbbbbbbbbb") == true)
        #expect(StudioView.render(h.state).text.contains("cccccccccccc ≠ image's"))
        let job = h.state.currentParameters
        #expect(job.ipAdapter == .init(path: "/models/ip", image: "/refs/ref.png", scale: 0.45, imageEncoder: "/models/enc"))
        #expect(job.loras.map(\.hash) == ["aaaaaaaaaaaa", "cccccccccccc"])

        // a record without adapters clears them; a session without an adapter takes the record's
        var g = Harness.adapters(ip: false)
        g.send(.parametersLoaded(parsed, from: "/s/00001-9.png"))
        #expect(g.state.ipAdapter == IPAdapterConfig(path: "/elsewhere/ip"))
        #expect(g.state.message?.text.contains("IP-Adapter ip taken from the image") == true)
        g.send(.parametersLoaded(ImageMetadata.parse(ImageMetadata.texts(for: ImageRecord(parameters: GenerationParameters())))!, from: "b.png"))
        #expect(g.state.ipImage.isEmpty && g.state.loras.isEmpty && g.state.ipScale == 1)
        #expect(g.state.currentParameters.ipAdapter == nil)
    }

    @Test("reloading foreign A1111 text: <lora:name:weight> tags become entries found by name; missing ones are named on screen")
    func reloadFromA1111() throws {
        var h = Harness.adapters(loras: [.init(path: "/mine/peft_lora.safetensors", weight: 1)], loraDirs: ["/library"])
        h.send(.loraInspected(id: 1, .found(path: "/mine/peft_lora.safetensors", hash: "111111111111")))
        let text = """
            a castle at night <lora:kohya_lora:0.6> <lora:unknown_style:1.2> <lora:peft_lora>
            Negative prompt: blurry
            Steps: 20, Sampler: Euler, CFG scale: 5, Seed: 7, Size: 1024x1024, Lora hashes: "kohya_lora: 0123456789ab"
            """
        let parsed = try #require(ImageMetadata.parseA1111(text))
        h.effects = []
        h.send(.parametersLoaded(parsed, from: "/downloads/a1111.png"))
        #expect(h.state.prompt.text == "a castle at night")
        #expect(h.state.loras.map(\.name) == ["kohya_lora", "unknown_style", "peft_lora"])
        #expect(h.state.loras.map(\.settings.weight) == [0.6, 1.2, 1])
        #expect(h.state.loras.map(\.recordedHash) == ["0123456789ab", nil, nil])
        // names only: nothing is used until found
        #expect(h.state.currentParameters.loras.isEmpty)
        #expect(StudioView.render(h.state).text.contains("checking…"))
        // searched in the folders of the LoRAs already in the list, then --lora-dir
        #expect(h.loraChecks.map(\.path) == ["kohya_lora", "unknown_style", "peft_lora"])
        #expect(h.loraChecks.allSatisfy { $0.dirs == ["/mine", "/library"] })
        let ids = h.state.loras.map(\.id)
        h.send(.loraInspected(id: ids[0], .found(path: "/library/kohya_lora.safetensors", hash: "0123456789ab")))
        h.send(.loraInspected(id: ids[1], .notFound(searched: ["/mine", "/library"])))
        h.send(.loraInspected(id: ids[2], .found(path: "/mine/peft_lora.safetensors", hash: "111111111111")))
        #expect(h.state.loras.map(\.status) == [.ready, .missing, .ready])
        #expect(h.state.message?.text.contains("LoRA not found: unknown_style — jobs leave it out") == true)
        #expect(h.state.message?.text.contains("looked in /mine, /library") == true)
        let f = StudioView.render(h.state).text
        #expect(f.contains("unknown_style") && f.contains("not found") && f.contains("(1 not used)"))
        #expect(h.state.currentParameters.loras.map(\.path) == ["/library/kohya_lora.safetensors", "/mine/peft_lora.safetensors"])
        // generating says which one is left out
        guard case .startJob(let job) = h.keys(.ctrl("g")).first else { Issue.record("no job"); return }
        #expect(job.parameters.loras.count == 2)
        #expect(h.state.message?.text.contains("without LoRA unknown_style (not found)") == true)
        #expect(StudioView.render(h.state).text.contains("LoRA×2"))
    }

    @Test("restoring a session's last image keeps the --lora list; Ctrl-P replaces it")
    func sessionRestoreKeepsFlags() {
        var h = Harness.adapters(loras: [.init(path: "/l/flag.safetensors", weight: 0.7)])
        var p = GenerationParameters(prompt: "old")
        p.loras = [.init(path: "/l/old.safetensors")]
        h.send(.sessionRestored(ParsedImageMetadata(parameters: p, source: .kolors), from: "00001-1.png"))
        #expect(h.state.prompt.text == "old")
        #expect(h.state.loras.map(\.name) == ["flag"])
        h.send(.parametersLoaded(ParsedImageMetadata(parameters: p, source: .kolors), from: "00001-1.png"))
        #expect(h.state.loras.map(\.name) == ["old"])
        var plain = Harness.adapters()
        plain.send(.sessionRestored(ParsedImageMetadata(parameters: p, source: .kolors), from: "00001-1.png"))
        #expect(plain.state.loras.map(\.name) == ["old"])
    }

    @Test("the gallery's reload restores the adapters too")
    func galleryReload() {
        var h = Harness.adapters()
        var p = GenerationParameters(prompt: "g")
        p.ipAdapter = .init(path: "/models/ip", image: "/r/ref.png", scale: 0.3)
        p.loras = [.init(path: "/l/a.safetensors", weight: 0.25, hash: "a")]
        h.send(.galleryLoaded(sessionPath: "/s", entries: [GalleryEntry(file: "00001-1.png", parameters: p)], notes: []))
        h.keys(.ctrl("o"))
        let e = h.keys(.character("r"))
        #expect(e.first == .loadPreview(path: "/s/00001-1.png", caption: "00001-1.png"))
        #expect(e.contains(.checkReference(path: "/r/ref.png")))
        #expect(e.contains { if case .inspectLoRA(_, "/l/a.safetensors", _) = $0 { true } else { false } })
        #expect(h.state.ipScale == 0.3 && h.state.loras.first?.settings.weight == 0.25)
        // the gallery's details list them
        h.keys(.ctrl("o"))
        let text = StudioView.render(h.state).text
        #expect(text.contains("IP-Adapter ref.png · scale 0.30") && text.contains("LoRAs a 0.25"))
    }

    @Test("the parameters pane scrolls to the focused field at the minimum size; frames stay well-formed")
    func scrollingAtMinimumSize() {
        var h = Harness.adapters(loras: (1...6).map { .init(path: "/l/lora_number_\($0).safetensors", weight: Float($0) / 10) },
                        width: StudioLayout.minWidth, height: StudioLayout.minHeight)
        h.send(.generatorStatus(.ready(description: "demo", isDemo: true)))   // the banner takes a row too
        h.state.focus = .ipImage
        h.type("/r/ref.png")
        h.keys(.enter)
        h.send(.referenceChecked(path: "/r/ref.png", .ok(width: 64, height: 64)))
        let l = h.state.layout
        #expect(!l.tooSmall && l.prompt.inner.height >= 2 && (l.negativeFolded ? l.negative.height == 1 : l.negative.inner.height >= 1))
        #expect(l.preview != nil, "the compact layout keeps a preview at the minimum size")
        for field in Field.allCases {
            h.state.focus = field
            for sel in field == .loras ? Array(0..<6) : [0] {
                h.state.loraSelected = sel
                let f = StudioView.render(h.state)
                ViewTests().checkRows(f)
                let inner = h.state.layout.params.inner
                let shown = (inner.y..<inner.maxY).map { f.row($0) }.joined(separator: "\n")
                switch field {
                case .ipImage: #expect(shown.contains("Reference image"))
                case .ipScale: #expect(shown.contains("IP scale"))
                case .loras: #expect(shown.contains("lora_number_\(sel + 1)"), "LoRA \(sel) visible:\n\(shown)")
                case .steps: #expect(shown.contains("Steps"))
                case .initImage: #expect(shown.contains("Init image"))
                default: break
                }
                for img in f.images where img.source == .file("/r/ref.png") {
                    #expect(img.rect.y >= inner.y && img.rect.maxY <= inner.maxY, "the thumbnail stays inside the pane")
                }
            }
        }
        // every size from the minimum up renders the adapter rows well-formed
        for (w, ht) in [(60, 20), (61, 24), (80, 24), (100, 30), (120, 40), (200, 60)] {
            var s = h.state
            s.width = w
            s.height = ht
            s.focus = .loras
            ViewTests().checkRows(StudioView.render(s))
        }
    }

    @Test("layouts with adapter rows: panes never overlap; the editors keep their minimum; the pane grows when there is room")
    func layoutWithExtraRows() {
        for width in stride(from: 60, through: 220, by: 16) {
            for height in stride(from: 20, through: 80, by: 6) {
                for extra in [0, 2, 5, 12, 40] {
                    let l = StudioLayout.compute(width: width, height: height, banner: true, extraParamRows: extra)
                    let panes = l.panes
                    for i in panes.indices {
                        #expect(panes[i].maxX <= width && panes[i].maxY <= height)
                        for j in panes.indices where j > i { #expect(!panes[i].intersects(panes[j])) }
                    }
                    if l.compact {
                        // the compact layout folds the negative prompt into one row; the prompt keeps 2 text rows
                        #expect(l.prompt.inner.height >= 2 && l.negative.height == 1)
                    } else {
                        #expect(l.prompt.height + l.negative.height >= StudioLayout.editorsMinimum)
                    }
                    #expect(l.params.inner.height >= l.classicParamRows)
                    #expect(l.params.inner.height <= l.classicParamRows + extra)
                }
            }
        }
        let roomy = StudioLayout.compute(width: 160, height: 50, banner: false, extraParamRows: 6)
        #expect(roomy.params.inner.height == StudioLayout.paramRows + 6)
    }

    @Test("the help overlay lists the new keys; the pane's hint follows the focus")
    func helpAndHints() {
        var h = Harness(width: 160, height: 70)
        h.keys(.function(1))
        let help = StudioView.render(h.state).text
        for k in ["Reference image", "IP scale ←/→", "LoRAs: a, Insert", "LoRAs: d, Del", "LoRAs: Ctrl-↑/↓, [ ]"] {
            #expect(help.contains(k), "help misses \(k)")
        }
        h.keys(.escape)
        h.send(.configureAdapters(AdapterOptions(ipAdapter: IPAdapterConfig(path: "/ip"), loras: [.init(path: "/l/a.safetensors")])))
        for (field, hint) in [(Field.ipImage, "Enter checks"), (.ipScale, "0 = off"), (.loras, "a add · d remove · ←/→ weight")] {
            h.state.focus = field
            #expect(StudioView.render(h.state).text.contains(hint), "\(field)")
        }
    }

    // MARK: - the file checks the shell runs

    @Test("LoRA files: A1111 short hash, found by name in a folder (also in a subfolder), missing, not safetensors")
    func loraLibrary() throws {
        let peft = fixtures + "/loras/peft_lora.safetensors"
        let expected = try SafetensorsFile.shortHash(path: peft)
        #expect(expected.count == 12)
        #expect(LoRALibrary.inspect(path: peft, searchDirs: []) == .found(path: peft, hash: expected))
        #expect(try LoRALibrary.shortHash(path: peft) == expected, "cached the second time, same value")
        #expect(LoRALibrary.inspect(path: "peft_lora", searchDirs: ["/nonexistent", fixtures + "/loras"])
                == .found(path: peft, hash: expected))
        #expect(LoRALibrary.inspect(path: "kohya_lora", searchDirs: [fixtures])
                == .found(path: fixtures + "/loras/kohya_lora.safetensors",
                          hash: try SafetensorsFile.shortHash(path: fixtures + "/loras/kohya_lora.safetensors")), "in a subfolder")
        #expect(LoRALibrary.inspect(path: "/moved/peft_lora.safetensors", searchDirs: [fixtures + "/loras"])
                == .found(path: peft, hash: expected), "a moved file is found by its name")
        #expect(LoRALibrary.inspect(path: "nothing_like_it", searchDirs: [fixtures + "/loras"]) == .notFound(searched: [fixtures + "/loras"]))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-lora-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("not a safetensors file at all".utf8).write(to: URL(fileURLWithPath: dir + "/bad.safetensors"))
        guard case .failed(let why) = LoRALibrary.inspect(path: dir + "/bad.safetensors", searchDirs: []) else {
            Issue.record("a bad file must fail"); return
        }
        #expect(why.contains("not a safetensors"))
    }

    @Test("reference images: a PNG gives its size; missing files, folders and other files are explained")
    func referenceCheck() throws {
        #expect(ReferenceImage.check(path: fixtures + "/references/ip_image_90x70.png") == .ok(width: 90, height: 70))
        #expect(ReferenceImage.check(path: fixtures + "/nope.png") == .failed("no such file"))
        #expect(ReferenceImage.check(path: fixtures + "/references") == .failed("is a folder, not a PNG"))
        #expect(ReferenceImage.check(path: fixtures + "/loras/peft_lora.safetensors") == .failed("not a PNG file"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-ref-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var truncated = try Data(contentsOf: URL(fileURLWithPath: fixtures + "/references/ip_image_90x70.png"))
        truncated = truncated.prefix(60)
        try truncated.write(to: URL(fileURLWithPath: dir + "/cut.png"))
        guard case .failed(let why) = ReferenceImage.check(path: dir + "/cut.png") else { Issue.record("a cut PNG must fail"); return }
        #expect(why.hasPrefix("unreadable PNG"))
    }

    @Test("paths typed into the studio: ~, relative, quoted, bare LoRA names; FILE[:WEIGHT]")
    func pathsAndSpecs() throws {
        #expect(resolveStudioPath("refs/a.png", cwd: "/work") == "/work/refs/a.png")
        #expect(resolveStudioPath("  '/x y/a.png' ", cwd: "/work") == "/x y/a.png")
        #expect(resolveStudioPath("~/a.png", cwd: "/work") == NSHomeDirectory() + "/a.png")
        #expect(resolveStudioPath("../a.png", cwd: "/work/sub") == "/work/a.png")
        #expect(resolveStudioPath("style", cwd: "/work", keepBareNames: true) == "style")
        #expect(resolveStudioPath("style.safetensors", cwd: "/work", keepBareNames: true) == "/work/style.safetensors")
        #expect(resolveStudioPath("", cwd: "/work") == "")
        #expect(resolveStudioPath("./a//b/../c.png", cwd: "/work/") == "/work/a/c.png")
        #expect(resolveStudioPath("/../../x.png", cwd: "/work") == "/x.png")
        #expect(try LoRASpec.parse("a.safetensors:0.7") == LoRASpec(path: "a.safetensors", weight: 0.7))
        #expect(try LoRASpec.parse(" /x:y/a.safetensors ") == LoRASpec(path: "/x:y/a.safetensors"))
        #expect(try LoRASpec.parse("style:-1.5") == LoRASpec(path: "style", weight: -1.5))
        #expect(throws: GenerationError.self) { try LoRASpec.parse(":0.5") }
        #expect(throws: GenerationError.self) { try LoRASpec.parse("a:inf") }
        #expect(throws: GenerationError.self) { try LoRASpec.parse("a:3", weightRange: -2...2) }
    }
}
