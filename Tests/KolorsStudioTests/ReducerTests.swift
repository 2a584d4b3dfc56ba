import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
import Testing

/// A state with a ready generator, and helpers to drive it.
struct Harness {
    var state: StudioState
    var effects: [Effect] = []

    init(width: Int = 120, height: Int = 40, generator: GeneratorStatus = .ready(description: "Kolors test", isDemo: false)) {
        state = StudioState(width: width, height: height, sessionPath: "/tmp/kolors-test-session")
        effects = reduce(&state, .generatorStatus(generator))
    }

    @discardableResult
    mutating func send(_ a: Action) -> [Effect] {
        let e = reduce(&state, a)
        effects += e
        return e
    }

    @discardableResult
    mutating func keys(_ ks: Key...) -> [Effect] { ks.flatMap { send(.key($0)) } }

    @discardableResult
    mutating func type(_ text: String) -> [Effect] { text.flatMap { send(.key(.character($0))) } }
}

@Suite("Reducer")
struct ReducerTests {
    @Test("the prompt has focus at start and typing needs no other key")
    func typingAtStart() {
        var h = Harness()
        #expect(h.state.focus == .prompt)
        h.type("一只猫 cat")
        #expect(h.state.prompt.text == "一只猫 cat")
        h.keys(.enter)
        h.type("2")
        #expect(h.state.prompt.text == "一只猫 cat\n2")
    }

    @Test("Tab and Shift-Tab walk every field in screen order (left to right, top to bottom) and wrap around")
    func tabOrder() {
        var h = Harness()
        var seen: [Field] = [h.state.focus]
        for _ in 0..<Field.allCases.count {
            h.keys(.tab)
            seen.append(h.state.focus)
        }
        // Images sits beside CFG and Strength beside Sampler: Tab reaches them there
        #expect(seen == [.prompt, .negative, .steps, .guidance, .images, .seed, .size, .scheduler, .strength, .initImage,
                         .ipImage, .ipScale, .loras, .prompt])
        h.keys(.backTab)
        #expect(h.state.focus == .loras, "the last field is the LoRA list")
        h.keys(.backTab, .backTab)
        #expect(h.state.focus == .ipImage)
        h.keys(.backTab)
        #expect(h.state.focus == .initImage)
        h.keys(.backTab, .backTab)
        #expect(h.state.focus == .scheduler)
    }

    @Test("the focus order is the order the fields appear on screen, in the full and the compact layout")
    func tabOrderFollowsTheScreen() {
        for (w, ht) in [(160, 50), (80, 24), (60, 20)] {
            var h = Harness(width: w, height: ht)
            var positions: [(Field, Int, Int)] = []
            for field in Field.allCases where field.isParameter && field != .ipScale {
                h.state.focus = field
                // the focused value is drawn in the focus colour: find where
                let f = StudioView.render(h.state)
                let pane = h.state.layout.params.inner
                var found: (Int, Int)?
                for y in pane.y..<pane.maxY {
                    for x in pane.x..<pane.maxX where f[x, y].role == .focusValue { found = (x, y); break }
                    if found != nil { break }
                }
                guard let (x, y) = found else { Issue.record("\(field) not highlighted at \(w)×\(ht)"); continue }
                positions.append((field, x, y))
            }
            for (a, b) in zip(positions, positions.dropFirst()) {
                #expect(a.2 < b.2 || (a.2 == b.2 && a.1 < b.1), "\(a.0) then \(b.0) at \(w)×\(ht): \(a.1),\(a.2) → \(b.1),\(b.2)")
            }
        }
    }

    @Test("Ctrl-G starts a job; while busy further Ctrl-G queue; finishing starts the next")
    func queueing() {
        var h = Harness()
        h.type("a cat")
        let e1 = h.keys(.ctrl("g"))
        guard case .startJob(let job1) = e1.first else { Issue.record("no start: \(e1)"); return }
        #expect(job1.parameters.prompt == "a cat")
        #expect(job1.id == 1)
        #expect(h.state.activeJob?.id == 1)
        let e2 = h.keys(.ctrl("g"))
        #expect(e2.isEmpty, "busy: the second job waits")
        #expect(h.state.queuedJobs.map(\.id) == [2])
        #expect(h.state.message?.text.contains("queued #2") == true)
        h.send(.generation(jobID: 1, .started(totalSteps: 25)))
        h.send(.generation(jobID: 1, .step(index: 3, total: 25, secondsPerStep: 2.0, preview: RGBImage(width: 4, height: 4))))
        #expect(h.state.activeJob?.step == 3)
        #expect(h.state.activeJob?.eta == 44)
        #expect(h.state.preview?.caption == "#1 step 3/25")
        let e3 = h.send(.jobSaved(jobID: 1, entries: [GalleryEntry(file: "00001-1.png", parameters: job1.parameters)],
                                  final: RGBImage(width: 8, height: 8)))
        guard case .startJob(let job2) = e3.first else { Issue.record("next job not started"); return }
        #expect(job2.id == 2)
        #expect(h.state.jobs.first { $0.id == 1 }?.phase == .finished)
        #expect(h.state.gallery.entries.map(\.file) == ["00001-1.png"])
        #expect(h.state.preview?.image.width == 8, "the final image replaces the preview")
    }

    @Test("Esc cancels the running job at once and keeps the last preview")
    func cancel() {
        var h = Harness()
        h.keys(.ctrl("g"))
        h.send(.generation(jobID: 1, .step(index: 5, total: 25, secondsPerStep: 1, preview: RGBImage(width: 2, height: 2))))
        let serial = h.state.preview?.serial
        let e = h.keys(.escape)
        #expect(e == [.cancelJob(1)])
        #expect(h.state.activeJob?.phase == .cancelling)
        #expect(h.state.message?.text.contains("cancelling #1") == true)
        #expect(StudioView.render(h.state).text.contains("cancelling"), "acknowledged on screen")
        #expect(h.keys(.escape).isEmpty, "a second Esc does not cancel twice")
        h.send(.generation(jobID: 1, .step(index: 6, total: 25, secondsPerStep: 1, preview: nil)))
        #expect(h.state.activeJob?.phase == .cancelling, "late steps do not undo the cancel")
        h.send(.jobCancelled(jobID: 1))
        #expect(h.state.activeJob == nil)
        #expect(h.state.jobs[0].phase == .cancelled)
        #expect(h.state.preview?.serial == serial)
        #expect(h.state.message?.text.contains("nothing saved") == true)
        #expect(h.keys(.escape).isEmpty)
        #expect(h.state.message?.text == "nothing to cancel")
    }

    @Test("F1 toggles help; Esc closes it before cancelling anything")
    func help() {
        var h = Harness()
        h.keys(.ctrl("g"))
        h.keys(.function(1))
        #expect(h.state.helpVisible)
        #expect(h.keys(.escape).isEmpty)
        #expect(!h.state.helpVisible)
        #expect(h.state.activeJob?.phase == .starting)
        h.keys(.function(1), .function(1))
        #expect(!h.state.helpVisible)
    }

    @Test("Ctrl-Q quits from anywhere; with a job running or queued it asks first (y quits and cancels the job)")
    func quit() {
        var h = Harness()
        h.keys(.ctrl("g"), .ctrl("g"), .ctrl("o"))
        #expect(h.keys(.ctrl("q")).isEmpty, "asks first")
        #expect(h.state.confirmingQuit == QuitConfirmation(running: 1, queued: 1, unsaved: 0))
        let text = StudioView.render(h.state).text
        #expect(text.contains("Quit Kolors Studio?") && text.contains("#1 starting") && text.contains("1 queued job will not run"))
        #expect(text.contains("y: quit"))
        #expect(h.keys(.character("n")).isEmpty)
        #expect(h.state.confirmingQuit == nil && !h.state.quitting, "any other key stays")
        h.keys(.ctrl("c"))
        #expect(h.keys(.character("y")) == [.cancelJob(1), .quit])
        #expect(h.state.quitting)
        var i = Harness()
        #expect(i.keys(.ctrl("c")) == [.quit], "nothing at risk: quits at once")
        var j = Harness()
        j.keys(.ctrl("g"))
        j.keys(.ctrl("q"))
        #expect(j.keys(.ctrl("q")) == [.cancelJob(1), .quit], "Ctrl-Q twice quits too")
    }

    @Test("jobs wait while the model loads and fail clearly without an engine")
    func generatorStates() {
        var h = Harness(generator: .loading("UNet", fraction: 0.4))
        #expect(h.keys(.ctrl("g")).isEmpty)
        #expect(h.state.queuedJobs.count == 1)
        #expect(h.state.message?.text.contains("waiting for the model") == true)
        let e = h.send(.generatorStatus(.ready(description: "Kolors", isDemo: false)))
        #expect(e.count == 1)
        var f = Harness(generator: .failed("engine not available"))
        #expect(f.keys(.ctrl("g")).isEmpty)
        #expect(f.state.jobs[0].phase == .failed("engine not available"))
        #expect(f.state.bannerText?.0.contains("engine not available") == true)
        var d = Harness(generator: .ready(description: "demo", isDemo: true))
        #expect(d.state.bannerText?.0.contains("random-weight demo") == true)
        #expect(d.state.bannerText?.0.contains("--model") == true)
        #expect(StudioView.render(d.state).row(1).contains("DEMO"))
        d.send(.generation(jobID: 99, .decoding))            // unknown job: ignored
    }

    @Test("an unlocked seed is used as shown, then rolls; a locked one stays")
    func seeds() {
        var h = Harness()
        let shown = h.state.params.seed
        guard case .startJob(let j) = h.keys(.ctrl("g")).first else { Issue.record(); return }
        #expect(j.parameters.seed == shown)
        #expect(h.state.params.seed != shown)
        h.state.focus = .seed
        h.keys(.character("l"))
        #expect(h.state.seedLocked)
        let locked = h.state.params.seed
        h.keys(.ctrl("g"))
        #expect(h.state.params.seed == locked)
        #expect(h.state.jobs.last?.parameters.seed == locked)
        h.keys(.character("r"))
        #expect(h.state.params.seed != locked)
        h.keys(.character(" "))
        #expect(!h.state.seedLocked)
        h.type("12345")
        h.keys(.enter)
        #expect(h.state.params.seed == 12345 && h.state.seedLocked, "a typed seed locks")
    }

    @Test("parameter editing: clamping, typed values, presets, samplers")
    func parameterRules() {
        var h = Harness()
        h.state.focus = .steps
        h.type("999"); h.keys(.tab)
        #expect(h.state.params.steps == 200)
        h.state.focus = .steps
        h.keys(.backspace, .backspace, .enter)
        #expect(h.state.params.steps == 2)
        h.keys(.left, .left, .left)
        #expect(h.state.params.steps == 1)
        h.keys(.pageUp)
        #expect(h.state.params.steps == 11)
        h.state.focus = .guidance
        h.type("4.5"); h.keys(.enter)
        #expect(h.state.params.guidance == 4.5)
        h.keys(.right)
        #expect(h.state.params.guidance == 5.0)
        h.type("99"); h.keys(.enter)
        #expect(h.state.params.guidance == 30)
        h.type("4..2"); h.keys(.enter)
        #expect(h.state.params.guidance == 30)
        #expect(h.state.message?.kind == .warning)
        h.state.focus = .size
        #expect((h.state.params.width, h.state.params.height) == (1024, 1024))
        h.keys(.right)
        #expect((h.state.params.width, h.state.params.height) == (1152, 896))
        h.keys(.character("s"))
        #expect((h.state.params.width, h.state.params.height) == (896, 1152))
        h.type("1000x700"); h.keys(.enter)
        #expect((h.state.params.width, h.state.params.height) == (1000, 704), "kolors generate's rule: multiples of 8")
        #expect(h.state.message?.text.contains("'1000x700' adjusted to 1000×704") == true)
        #expect(h.state.message?.kind == .warning)
        h.state.message = nil
        h.type("1000x704"); h.keys(.enter)
        #expect(h.state.message == nil, "a valid size is taken silently")
        h.type("9000x3"); h.keys(.enter)
        #expect((h.state.params.width, h.state.params.height) == (4096, 8))
        #expect(h.state.message?.text.contains("multiples of 8, 8…4096") == true)
        h.keys(.left)
        #expect(ParameterRules.presetIndex(width: h.state.params.width, height: h.state.params.height) != nil)
        let presets = ParameterRules.sizePresets.map { "\($0.width)x\($0.height)" }
        for p in ["1024x1024", "1152x896", "896x1152", "1216x832", "832x1216", "1344x768", "768x1344", "1536x640",
                  "640x1536", "512x512", "768x768"] {
            #expect(presets.contains(p))
        }
        h.state.focus = .scheduler
        var names: [String] = [h.state.params.scheduler]
        for _ in 0..<6 { h.keys(.right); names.append(h.state.params.scheduler) }
        #expect(names == ["euler", "euler-a", "dpm++2m", "dpm++2m-karras", "ddim", "unipc", "euler"])
        h.keys(.left)
        #expect(h.state.params.scheduler == "unipc")
        h.state.focus = .images
        h.type("20"); h.keys(.tab)
        #expect(h.state.params.imagesPerPrompt == 8)
        h.state.focus = .strength
        h.keys(.right)
        #expect(h.state.params.strength == 0.35)
        h.type("0"); h.keys(.enter)
        #expect(h.state.params.strength == 0.01)
        h.state.focus = .initImage
        h.type("/tmp/in.png")
        guard case .startJob(let j) = h.keys(.ctrl("g")).first else { Issue.record(); return }
        #expect(j.parameters.initImage == "/tmp/in.png")
        #expect(j.parameters.scheduler == "unipc" && j.parameters.imagesPerPrompt == 8)
    }

    @Test("pasting goes to the focused editor; digits only into value fields")
    func paste() {
        var h = Harness()
        let long = String(repeating: "一只猫, a cat 🐱\n", count: 400)
        h.send(.paste(long))
        #expect(h.state.prompt.text == long)
        h.state.focus = .steps
        h.send(.paste("3a0"))
        h.keys(.enter)
        #expect(h.state.params.steps == 30)
    }

    @Test("the gallery: select, favourite, delete with confirmation, reload parameters")
    func gallery() {
        var h = Harness()
        let entries = (1...5).map { i in
            GalleryEntry(file: String(format: "%05d-%d.png", i, i),
                         parameters: GenerationParameters(prompt: "p\(i)", negativePrompt: "n\(i)", width: 832, height: 1216,
                                                          steps: 10 + i, guidance: 3.5, seed: UInt64(i), scheduler: "ddim"))
        }
        h.send(.galleryLoaded(sessionPath: "/s", entries: entries, notes: []))
        h.keys(.ctrl("o"))
        #expect(h.state.galleryVisible)
        #expect(h.state.gallery.selected == 4, "opens on the newest image")
        h.keys(.left, .left)
        #expect(h.state.gallery.selected == 2)
        #expect(h.keys(.character("f")) == [.setFavourite(file: "00003-3.png", true)])
        #expect(h.state.gallery.entries[2].favourite)
        h.keys(.character("d"))
        #expect(h.state.gallery.confirmingDelete)
        h.keys(.character("n"))
        #expect(!h.state.gallery.confirmingDelete && h.state.gallery.entries.count == 5)
        h.keys(.delete)
        #expect(h.keys(.character("y")) == [.deleteImage(file: "00003-3.png")])
        #expect(h.state.gallery.entries.count == 4)
        h.keys(.enter)
        #expect(h.state.gallery.fullView)
        h.keys(.escape)
        #expect(!h.state.gallery.fullView && h.state.galleryVisible)
        h.keys(.home)
        let e = h.keys(.character("r"))
        #expect(e == [.loadPreview(path: "/s/00001-1.png", caption: "00001-1.png")])
        #expect(!h.state.galleryVisible)
        #expect(h.state.prompt.text == "p1" && h.state.negative.text == "n1")
        #expect(h.state.params.steps == 11 && h.state.params.seed == 1 && h.state.seedLocked)
        #expect(h.state.params.scheduler == "ddim" && h.state.params.width == 832)
        h.keys(.ctrl("o"), .character("o"))
        #expect(h.state.gallery.pickingSession)
        #expect(h.effects.last == .listSessions)
        h.send(.sessionsListed([SessionInfo(path: "/a", name: "a", imageCount: 2), SessionInfo(path: "/s", name: "s", imageCount: 4)]))
        #expect(h.state.gallery.sessionSelected == 1)
        h.keys(.up)
        #expect(h.keys(.enter) == [.openSession(path: "/a")])
    }

    @Test("Ctrl-P asks for a PNG path and loads its parameters")
    func loadParameters() {
        var h = Harness()
        h.keys(.ctrl("p"))
        #expect(h.state.linePrompt != nil)
        h.send(.paste("/tmp/x.png"))
        #expect(h.keys(.enter) == [.loadParameters(path: "/tmp/x.png")])
        #expect(h.state.linePrompt?.busy == true, "the dialog stays until the PNG is read")
        let parsed = ImageMetadata.parseA1111("hello\nNegative prompt: bad\nSteps: 30, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 1002x1000")!
        h.send(.parametersLoaded(parsed, from: "/tmp/x.png"))
        #expect(h.state.linePrompt == nil, "loaded: the dialog closes")
        #expect(h.state.prompt.text == "hello" && h.state.negative.text == "bad")
        #expect(h.state.params.scheduler == "euler-a" && h.state.params.steps == 30 && h.state.params.guidance == 7)
        #expect(h.state.params.width == 1000 && h.state.params.height == 1000, "sizes follow kolors generate's multiples of 8")
        #expect(h.state.message?.text.contains("size 1002×1000 adjusted to 1000×1000") == true)
        #expect(h.state.params.model == "Kolors test", "the model is the studio's, not the file's")
    }

    @Test("F2 cycles themes; Ctrl-L repaints; token counts show against 256")
    func themesAndTokens() {
        var h = Harness()
        h.send(.themesFound(["dark", "light", "high-contrast"]))
        #expect(h.keys(.function(2)) == [.applyTheme("light")])
        h.send(.themeApplied("light"))
        #expect(h.keys(.function(2)) == [.applyTheme("high-contrast")])
        let before = h.state.repaintSerial
        #expect(h.keys(.ctrl("l")) == [.redraw])
        #expect(h.state.repaintSerial == before + 1)
        h.send(.tokenCounts(prompt: 300, negative: 12))
        let frame = StudioView.render(h.state)
        #expect(frame.text.contains("300/256 tokens"))
        #expect(frame.text.contains("12/256 tokens"))
        h.keys(.ctrl("g"))
        #expect(h.state.message?.text.contains("only the first 256") == true)
    }

    @Test("model loading shows its progress in the title and status line")
    func loadingProgress() {
        var h = Harness(generator: .loading("UNet weights", fraction: 0.42))
        let f = StudioView.render(h.state)
        #expect(f.row(0).contains("loading: UNet weights 42%"))
        #expect(f.row(h.state.height - 1).contains("loading model: UNet weights ████░░░░░░ 42%"))
        h.send(.generatorStatus(.ready(description: "Kolors fp16", isDemo: false)))
        #expect(StudioView.render(h.state).row(0).contains("Kolors fp16"))
        // a job's own loading events show too
        h.keys(.ctrl("g"))
        h.send(.generation(jobID: 1, .loading("text encoder", fraction: 0.5)))
        #expect(StudioView.render(h.state).text.contains("#1 loading text encoder 50%"))
    }

    @Test("resizing and ticking: messages expire, RSS shows")
    func ticks() {
        var h = Harness()
        h.send(.tick(now: 100, rssBytes: 3 << 30))
        h.keys(.escape)
        #expect(h.state.message != nil)
        h.send(.tick(now: 104, rssBytes: nil))
        #expect(h.state.message == nil)
        h.send(.resize(width: 50, height: 10))
        #expect(h.state.layout.tooSmall)
        #expect(StudioView.render(h.state).text.contains("Terminal too small"))
        h.send(.resize(width: 130, height: 45))
        #expect(StudioView.render(h.state).row(44).contains("RSS 3.00 GB"))
    }
}
