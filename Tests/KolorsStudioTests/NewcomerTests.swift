import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
import Testing

/// The studio as a newcomer meets it: small terminals, sessions that cannot be written, seeds,
/// messages, dialogs, batches (reducer, layout and view; no terminal).
@Suite("Newcomer")
struct NewcomerTests {
    // MARK: small terminals

    @Test("80×24, 60×20 and 99×33 get a good preview pane (compact layout), with and without the banner", arguments: [(80, 24), (60, 20), (99, 33)])
    func compactLayoutHasAPreview(width: Int, height: Int) throws {
        for banner in [false, true] {
            for negativeFocused in [false, true] {
                let l = StudioLayout.compute(width: width, height: height, banner: banner, extraParamRows: 3,
                                             compactExtraParamRows: 2, negativeFocused: negativeFocused)
                let p = try #require(l.preview, "no preview at \(width)×\(height)")
                #expect(l.compact)
                #expect(p.inner.width >= 16 && p.inner.height >= 10, "a usable preview: \(p)")
                #expect(p.x >= l.prompt.maxX && p.x >= l.params.maxX, "beside the editors")
                #expect(l.negativeFolded == !negativeFocused)
                #expect(l.negative.height == (negativeFocused ? 3 : 1))
                #expect(l.prompt.inner.height >= 2)
                #expect(l.params.width >= StudioLayout.compactLeftWidth)
                for (a, b) in [(l.prompt, l.negative), (l.negative, l.params), (l.prompt, p), (l.params, p)] {
                    #expect(!a.intersects(b))
                }
                #expect(p.maxY <= height - 2)
            }
        }
        // with room under the editors the full layout stays
        #expect(!StudioLayout.compute(width: 80, height: 50, banner: false).compact)
        #expect(!StudioLayout.compute(width: 160, height: 45, banner: true).compact)
    }

    @Test("at 80×24 the screen shows the preview pane, the folded negative prompt and every classic field")
    func compactScreen() {
        var h = Harness(width: 80, height: 24, generator: .ready(description: "demo", isDemo: true))
        h.state.negative.setText("blurry, 低质量")
        h.send(.previewLoaded(RGBImage(width: 64, height: 64), caption: "00001-5.png"))
        let f = StudioView.render(h.state)
        let text = f.text
        #expect(text.contains("Preview · 00001-5.png"))
        #expect(text.contains("Ctrl-F full view"), "the preview says how to see it large")
        #expect(text.contains(" Negative blurry, 低质量"))
        for label in ["Steps", "CFG", "Images", "Seed", "Size", "Sampler", "Strength", "Init image", "IP-Adapter", "LoRAs"] {
            #expect(text.contains(label), "\(label) missing at 80×24")
        }
        let image = f.images.first { if case .frame = $0.source { true } else { false } }
        #expect(image?.rect == h.state.layout.preview?.inner)
        // Tab into the negative prompt unfolds it into a box
        h.keys(.tab)
        let unfolded = StudioView.render(h.state).text
        #expect(unfolded.contains("Negative prompt ✎"))
        #expect(h.state.layout.preview != nil)
    }

    @Test("Ctrl-F shows the preview over the whole screen at any size; Esc or Ctrl-F goes back")
    func fullPreview() {
        for (w, ht) in [(60, 20), (80, 24), (200, 60)] {
            var h = Harness(width: w, height: ht)
            h.send(.previewLoaded(RGBImage(width: 32, height: 32), caption: "x.png"))
            h.keys(.ctrl("f"))
            #expect(h.state.fullPreview)
            let f = StudioView.render(h.state)
            #expect(f.images.count == 1)
            #expect(f.images.first?.rect == h.state.layout.overlayArea.inner)
            #expect(f.text.contains("Ctrl-F or Esc: back"))
            #expect(f.cursor == nil)
            h.type("abc")
            #expect(h.state.prompt.text.isEmpty, "typing waits while the full view covers the editor")
            h.keys(.escape)
            #expect(!h.state.fullPreview)
            h.keys(.ctrl("f"), .ctrl("f"))
            #expect(!h.state.fullPreview)
        }
        // a running job's steps show in the full view as they come
        var h = Harness(width: 80, height: 24)
        h.keys(.ctrl("g"), .ctrl("f"))
        h.send(.generation(jobID: 1, .step(index: 2, total: 9, secondsPerStep: 1, preview: RGBImage(width: 8, height: 8))))
        let text = StudioView.render(h.state).text
        #expect(text.contains("#1 step 2/9"))
        #expect(h.keys(.escape).isEmpty, "Esc leaves the full view first, it does not cancel")
        #expect(h.state.activeJob?.phase == .running)
    }

    // MARK: sessions that cannot take images

    @Test("a session that cannot be written refuses Ctrl-G with the reason, before any work")
    func readOnlySessionRefuses() {
        var h = Harness()
        h.send(.sessionChecked(path: "/tmp/kolors-test-session", problem: "the folder is not writable (Read-only file system)"))
        #expect(h.state.message?.text.contains("Read-only file system") == true)
        h.type("a cat")
        let e = h.keys(.ctrl("g"))
        #expect(e.isEmpty, "no job starts")
        #expect(h.state.jobs.isEmpty)
        #expect(h.state.message?.text.contains("not queued") == true)
        #expect(h.state.message?.text.contains("Read-only file system") == true)
        #expect(h.state.message?.kind == .error)
        // a check of another folder (a session opened meanwhile) does not apply
        h.send(.sessionChecked(path: "/elsewhere", problem: nil))
        #expect(h.state.gallery.problem != nil)
        h.send(.sessionChecked(path: "/tmp/kolors-test-session", problem: nil))
        guard case .startJob = h.keys(.ctrl("g")).first else { Issue.record("a writable session generates again"); return }
    }

    @Test("a queued job does not start once the session became unwritable")
    func queuedJobsStopWhenTheSessionGoes() {
        var h = Harness()
        h.keys(.ctrl("g"), .ctrl("g"))
        h.send(.sessionChecked(path: "/tmp/kolors-test-session", problem: "gone"))
        let e = h.send(.jobSaved(jobID: 1, entries: [], final: nil))
        #expect(e.isEmpty)
        #expect(h.state.jobs.last?.phase == .failed("gone"))
    }

    @Test("a save that still fails keeps the images in memory; Ctrl-S saves them elsewhere; quitting asks")
    func unsavedImagesAreKept() {
        var h = Harness()
        h.keys(.ctrl("g"))
        let p = GenerationParameters(prompt: "a fox", seed: 7, imagesPerPrompt: 2)
        let kept = [0, 1].map { UnsavedImage(jobID: 1, image: RGBImage(width: 4 + $0, height: 4), record: ImageRecord(parameters: p, batchIndex: $0)) }
        h.send(.jobSaveFailed(jobID: 1, saved: [], unsaved: kept, message: "cannot create the session folder /x: denied"))
        #expect(h.state.unsaved.count == 2)
        #expect(h.state.jobs[0].phase == .unsaved("cannot create the session folder /x: denied"))
        #expect(h.state.preview?.image.width == 4, "the first image is shown")
        #expect(h.state.message?.text.contains("kept in memory: Ctrl-S saves them elsewhere") == true)
        #expect(StudioView.render(h.state).text.contains("! #1 not saved: Ctrl-S"))
        // quitting would lose them: asks
        #expect(h.keys(.ctrl("q")).isEmpty)
        #expect(h.state.confirmingQuit?.unsaved == 2)
        #expect(StudioView.render(h.state).text.contains("2 unsaved images will be lost"))
        h.keys(.escape)
        // Ctrl-S: a folder dialog, prefilled under the working directory
        h.state.workingDirectory = "/home/me"
        h.keys(.ctrl("s"))
        #expect(h.state.linePrompt?.purpose == .saveUnsaved)
        #expect(h.state.linePrompt?.editor.text == "/home/me/kolors-unsaved")
        h.keys(.ctrl("u"))
        h.type("/nope")
        #expect(h.keys(.enter) == [.saveUnsaved(folder: "/nope")])
        h.send(.unsavedSaveFailed(folder: "/nope", message: "cannot create the folder: / does not accept new folders"))
        #expect(h.state.linePrompt?.note?.text.contains("does not accept") == true, "the dialog stays with the reason")
        #expect(h.state.unsaved.count == 2)
        h.keys(.ctrl("u"))
        h.type("saved")
        #expect(h.keys(.enter) == [.saveUnsaved(folder: "/home/me/saved")], "relative to the working directory")
        h.send(.unsavedSaved(folder: "/home/me/saved", files: ["00001-7.png", "00002-7.png"]))
        #expect(h.state.unsaved.isEmpty && h.state.linePrompt == nil)
        #expect(h.state.jobs[0].phase == .finished)
        #expect(h.keys(.ctrl("q")) == [.quit], "nothing at risk any more")
    }

    // MARK: seeds and batches

    @Test("reopening a session keeps 'new each run': the next Ctrl-G does not remake the last image")
    func restoreKeepsTheSeedMode() {
        var h = Harness()
        #expect(!h.state.seedLocked)
        let last = GenerationParameters(prompt: "a lighthouse", steps: 33, seed: 4242)
        h.send(.sessionRestored(ParsedImageMetadata(parameters: last, source: .kolors), from: "00003-4242.png"))
        #expect(h.state.prompt.text == "a lighthouse" && h.state.params.steps == 33)
        #expect(!h.state.seedLocked)
        #expect(h.state.params.seed != 4242)
        #expect(h.state.message?.text.contains("new seed each run") == true)
        guard case .startJob(let job) = h.keys(.ctrl("g")).first else { Issue.record("no job started"); return }
        #expect(job.parameters.seed != 4242)
        // a user who locked the seed keeps the lock (and gets the restored seed)
        var l = Harness()
        l.state.seedLocked = true
        l.send(.sessionRestored(ParsedImageMetadata(parameters: last, source: .kolors), from: "00003-4242.png"))
        #expect(l.state.seedLocked && l.state.params.seed == 4242)
        // loading an image on purpose (Ctrl-P, the gallery's r) locks it to remake that image
        var p = Harness()
        p.send(.parametersLoaded(ParsedImageMetadata(parameters: last, source: .kolors), from: "/x/00003-4242.png"))
        #expect(p.state.seedLocked && p.state.params.seed == 4242)
        // a restore that arrives after the user started (a slow index) leaves the fields alone
        var late = Harness()
        late.type("my own prompt")
        late.send(.sessionRestored(ParsedImageMetadata(parameters: last, source: .kolors), from: "00003-4242.png"))
        #expect(late.state.prompt.text == "my own prompt" && late.state.params.steps != 33)
        #expect(late.state.message?.text.contains("kept your edits") == true)
    }

    @Test("batch seeds: Space on Images switches shared / seed+i; jobs and records carry it")
    func batchSeedMode() {
        var h = Harness()
        h.state.focus = .images
        h.type("3")
        h.keys(.enter)
        #expect(!StudioView.render(h.state).text.contains("seed+i"), "the default (diffusers' shared seed) says nothing")
        h.keys(.character(" "))
        #expect(h.state.params.batchSeeds == .increment)
        #expect(StudioView.render(h.state).text.contains("seed+i"))
        h.state.focus = .seed
        h.type("100")
        h.keys(.enter)
        guard case .startJob(let job) = h.keys(.ctrl("g")).first else { Issue.record("no job started"); return }
        #expect(job.parameters.batchSeeds == .increment && job.parameters.imagesPerPrompt == 3)
        #expect((0..<3).map { job.parameters.forBatchImage($0).seed } == [100, 101, 102])
        #expect(GenerationParameters(seed: 100, imagesPerPrompt: 3).forBatchImage(2).seed == 100, "shared: one seed")
        // the mode survives the JSON record; older records read as shared
        let record = ImageRecord(parameters: job.parameters.forBatchImage(1), batchIndex: 1)
        let back = ImageMetadata.parse(ImageMetadata.texts(for: record))
        #expect(back?.parameters.batchSeeds == .increment && back?.parameters.seed == 101 && back?.batchIndex == 1)
        let old = try? JSONDecoder().decode(GenerationParameters.self, from: Data(#"{"prompt":"x","seed":3}"#.utf8))
        #expect(old?.batchSeeds == .shared)
        #expect(!ImageMetadata.json(ImageRecord(parameters: GenerationParameters())).contains("batchSeeds"))
    }

    @Test("reloading one image of a seed+i batch remakes that image alone; a shared-seed batch says it remakes the batch")
    func reloadBatchImage() {
        var h = Harness()
        var p = GenerationParameters(prompt: "b", seed: 100, imagesPerPrompt: 4, batchSeeds: .increment)
        p = p.forBatchImage(2)
        h.send(.parametersLoaded(ParsedImageMetadata(parameters: p, source: .kolors, batchIndex: 2), from: "00003-102.png"))
        #expect(h.state.params.seed == 102 && h.state.params.imagesPerPrompt == 1 && h.state.seedLocked)
        #expect(h.state.message?.text.contains("image 3 of a batch of 4 (seed+i)") == true)
        guard case .startJob(let job) = h.keys(.ctrl("g")).first else { Issue.record("no job started"); return }
        #expect(job.parameters.seed == 102 && job.parameters.imagesPerPrompt == 1)
        // A1111 records each image's own seed: the same rule
        var a = Harness()
        let a1111 = ImageMetadata.parseA1111("cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 55, Size: 512x512, Batch size: 4, Batch pos: 1")!
        a.send(.parametersLoaded(a1111, from: "/x/a.png"))
        #expect(a.state.params.seed == 55 && a.state.params.imagesPerPrompt == 1)
        // shared seed: the batch comes back whole, and the message says which image it was
        var s = Harness()
        let shared = GenerationParameters(prompt: "b", seed: 9, imagesPerPrompt: 4)
        s.send(.parametersLoaded(ParsedImageMetadata(parameters: shared, source: .kolors, batchIndex: 3), from: "00004-9.png"))
        #expect(s.state.params.imagesPerPrompt == 4 && s.state.params.seed == 9)
        #expect(s.state.message?.text.contains("remakes the whole batch (it is #4)") == true)
        // the gallery's r follows the same rule
        var g = Harness()
        g.send(.galleryLoaded(sessionPath: "/s", entries: [GalleryEntry(file: "00003-102.png", parameters: p, batchIndex: 2)], notes: []))
        g.keys(.ctrl("o"), .character("r"))
        #expect(g.state.params.seed == 102 && g.state.params.imagesPerPrompt == 1)
        // restoring the session at start-up goes on with the batch as it was made
        var r = Harness()
        r.state.seedLocked = true
        r.send(.sessionRestored(ParsedImageMetadata(parameters: p, source: .kolors, batchIndex: 2), from: "00003-102.png"))
        #expect(r.state.params.seed == 100 && r.state.params.imagesPerPrompt == 4 && r.state.params.batchSeeds == .increment)
    }

    @Test("seed+i batches run as one-image jobs with seed+i, steps counted across the batch")
    func generateBatchIncrements() throws {
        let g = TestPatternGenerator(stepDelay: 0)
        let p = GenerationParameters(prompt: "x", width: 32, height: 32, steps: 3, seed: 40, imagesPerPrompt: 3, batchSeeds: .increment)
        let events = EventLog()
        let images = try g.generateBatch(p, cancel: CancellationToken()) { events.add($0) }
        #expect(images.count == 3)
        for i in 0..<3 {
            var one = p
            one.seed = 40 + UInt64(i)
            one.imagesPerPrompt = 1
            one.batchSeeds = .shared
            #expect(images[i] == (try g.generate(one, cancel: CancellationToken()) { _ in })[0], "image \(i) is seed \(40 + i) made alone")
        }
        let steps = events.all.compactMap { if case .step(let i, let n, _, _) = $0 { (i, n) } else { nil } }
        #expect(steps.map(\.0) == Array(1...9) && steps.allSatisfy { $0.1 == 9 })
        #expect(events.all.filter { if case .started = $0 { true } else { false } }.count == 1)
        #expect(events.all.filter { $0 == .finished }.count == 1)
    }

    @Test("the demo checkpoint starts on a small size; a chosen or restored size stays")
    func demoDefaults() {
        var h = Harness(generator: .loading("x", fraction: nil))
        h.send(.generatorStatus(.ready(description: "demo", isDemo: true)))
        #expect(h.state.params.width == ParameterRules.demoSize && h.state.params.height == ParameterRules.demoSize)
        var real = Harness()
        #expect(real.state.params.width == 1024)
        real.send(.generatorStatus(.ready(description: "Kolors", isDemo: false)))
        #expect(real.state.params.width == 1024)
        var chosen = Harness(generator: .loading("x", fraction: nil))
        chosen.state.focus = .size
        chosen.keys(.right, .left)
        chosen.send(.generatorStatus(.ready(description: "demo", isDemo: true)))
        #expect(chosen.state.params.width == 1024, "the user's size wins")
        var restored = Harness(generator: .loading("x", fraction: nil))
        restored.send(.sessionRestored(ParsedImageMetadata(parameters: GenerationParameters(), source: .kolors), from: "a.png"))
        restored.send(.generatorStatus(.ready(description: "demo", isDemo: true)))
        #expect(restored.state.params.width == 1024, "the session's size wins")
    }

    // MARK: messages

    @Test("every message goes to the log (Ctrl-N), long ones wrap there; the status line says where the rest is")
    func messageLog() {
        var h = Harness(width: 80, height: 24, generator: .loading("x", fraction: nil))
        h.send(.generatorStatus(.failed("cannot load /models/k: the UNet's config.json says 4 channels but its weights have 9")))
        let long = "reference image ip.png: " + String(repeating: "a long explanation ", count: 12) + "END"
        h.send(.failure(long))
        #expect(h.state.messageLog.contains { $0.text.contains("No image engine") }, "the banner's notice is logged")
        #expect(h.state.messageLog.last?.text == long)
        let status = StudioView.render(h.state).row(23)
        #expect(status.contains("…Ctrl-N"), "cut messages point at the log: \(status)")
        h.keys(.ctrl("n"))
        #expect(h.state.logVisible)
        let text = StudioView.render(h.state).text
        #expect(text.contains("Messages · 2"))
        #expect(text.contains("END"), "the whole message, wrapped")
        let lines = StudioView.logLines(h.state, width: 60)
        #expect(lines.count > 4, "long messages take several lines")
        #expect(lines.allSatisfy { CellWidth.of($0.0) <= 60 })
        h.keys(.escape)
        #expect(!h.state.logVisible)
        for i in 0..<(messageLogLimit + 20) { h.send(.failure("m\(i)")) }
        #expect(h.state.messageLog.count == messageLogLimit)
        #expect(h.state.messageLog.last?.text == "m\(messageLogLimit + 19)")
    }

    @Test("over 256 tokens the prompt's counter says how many are cut, and stays")
    func tokenWarning() {
        var h = Harness(width: 80, height: 24)
        h.send(.tokenCounts(prompt: 300, negative: 3))
        h.send(.tick(now: 1000, rssBytes: nil))
        let text = StudioView.render(h.state).text
        #expect(text.contains("⚠ 300/256: 44 cut"), "the short form in the 80-column prompt box")
        var wide = Harness(width: 200, height: 50)
        wide.send(.tokenCounts(prompt: 300, negative: 3))
        #expect(StudioView.render(wide.state).text.contains("⚠ 300/256 tokens: last 44 cut"))
        #expect(StudioView.tokenNote(300).1 == .error)
        #expect(StudioView.tokenNote(300, room: 8).0 == "⚠ 300/256")
        #expect(StudioView.tokenNote(256).0 == "256/256 tokens")
    }

    @Test("the help overlay uses the width it needs on wide terminals and wraps instead of cutting on narrow ones")
    func helpWidth() {
        var wide = Harness(width: 200, height: 80).state
        wide.helpVisible = true
        let text = StudioView.render(wide).text
        for section in KeyMap.sections {
            for b in section.bindings { #expect(text.contains(b.action), "cut: \(b.action)") }
        }
        for (w, ht) in [(80, 60), (60, 60)] {
            var narrow = Harness(width: w, height: ht).state
            narrow.helpVisible = true
            let lines = StudioView.helpLines(width: w - 4)
            let joined = lines.map(\.1).joined(separator: " ").replacingOccurrences(of: "  ", with: " ")
            for b in KeyMap.sections.flatMap(\.bindings) {
                let words = b.action.split(separator: " ")
                #expect(words.allSatisfy { joined.contains($0) }, "\(b.action) lost at \(w) columns")
            }
            #expect(StudioView.render(narrow).text.contains("Help · every key"))
        }
    }

    @Test("word wrapping for the help and the log: between words, long words broken, wide characters counted")
    func wrapping() {
        #expect(CellWidth.wrap("the quick brown fox jumps", width: 10) == ["the quick", "brown fox", "jumps"])
        #expect(CellWidth.wrap("abcdefghijkl xy", width: 5) == ["abcde", "fghij", "kl xy"])
        #expect(CellWidth.wrap("一只可爱的小猫 cat", width: 6) == ["一只可", "爱的小", "猫 cat"])
        #expect(CellWidth.wrap("one\ntwo", width: 20) == ["one", "two"])
        #expect(CellWidth.wrap("", width: 5) == [""])
        for line in CellWidth.wrap(String(repeating: "word 可图 ", count: 40), width: 13) { #expect(CellWidth.of(line) <= 13) }
    }

    @Test("every Ctrl key the studio answers is in the help, and every help key does something")
    func keysAndHelpAgree() {
        let helpKeys = KeyMap.sections.flatMap(\.bindings).map { $0.keys + " " + $0.action }.joined(separator: " ")
        for letter in "abcdefghijklmnopqrstuvwxyz" {
            var h = Harness()
            h.keys(.ctrl("g"))        // a running job makes Ctrl-Q ask instead of quitting
            h.send(.jobFailed(jobID: 1, message: "x"))
            h.state.unsaved = [UnsavedImage(jobID: 1, image: RGBImage(width: 1, height: 1), record: ImageRecord(parameters: .init()))]
            h.state.focus = .seed
            let before = h.state
            let effects = h.keys(.ctrl(letter))
            let editorKeys: Set<Character> = ["a", "e", "k", "u", "w"]        // the prompt editors' keys (listed as such)
            var after = h.state
            after.fieldsTouched = before.fieldsTouched
            if effects.isEmpty && after == before { continue }
            if editorKeys.contains(letter) { continue }
            #expect(helpKeys.contains("Ctrl-\(letter.uppercased())"), "Ctrl-\(letter.uppercased()) does something but help does not list it")
        }
        for key in ["Ctrl-G", "Ctrl-X", "Ctrl-F", "Ctrl-O", "Ctrl-P", "Ctrl-S", "Ctrl-N", "Ctrl-L", "Ctrl-Z", "Ctrl-Q", "F1", "F2"] {
            #expect(helpKeys.contains(key))
        }
        var z = Harness()
        #expect(z.keys(.ctrl("z")) == [.suspend])
    }

    // MARK: dialogs

    @Test("Ctrl-P: an error keeps the dialog open with the reason (not the path again); Tab completes")
    func loadDialog() {
        var h = Harness()
        h.state.workingDirectory = "/work"
        h.keys(.ctrl("p"))
        h.type("pics/a")
        #expect(h.keys(.tab) == [.completePath("pics/a")])
        h.send(.pathCompleted(for: "pics/a", text: "pics/a1111", candidates: ["a1111.png", "a1111-old.png"]))
        #expect(h.state.linePrompt?.editor.text == "pics/a1111")
        #expect(StudioView.render(h.state).text.contains("a1111.png  a1111-old.png"))
        h.send(.pathCompleted(for: "something else", text: "x", candidates: []))
        #expect(h.state.linePrompt?.editor.text == "pics/a1111", "a late answer for older text is dropped")
        h.type(".png")
        #expect(h.keys(.enter) == [.loadParameters(path: "/work/pics/a1111.png")], "relative to the working directory")
        h.send(.parametersLoadFailed(path: "/work/pics/a1111.png", message: "no such file"))
        #expect(h.state.linePrompt != nil && h.state.linePrompt?.busy == false)
        let text = StudioView.render(h.state).text
        #expect(text.contains("✗ no such file"))
        #expect(text.components(separatedBy: "/work/pics/a1111.png").count == 1, "the path is not repeated")
        #expect(h.state.messageLog.last?.text.contains("/work/pics/a1111.png") == true, "the log keeps the whole story")
        h.keys(.backspace)
        #expect(h.state.linePrompt?.note == nil, "editing clears the error")
        h.keys(.escape)
        #expect(h.state.linePrompt == nil)
    }

    @Test("path completion: common prefix, a slash after folders, candidates when several match")
    func pathCompletion() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-complete-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/pictures", withIntermediateDirectories: true)
        for f in ["a1111-one.png", "a1111-two.png", "b.png", ".hidden.png"] { FileManager.default.createFile(atPath: dir + "/pictures/" + f, contents: Data()) }
        #expect(PathCompletion.complete("pic", cwd: dir) == ("pictures/", ["pictures"]))
        let two = PathCompletion.complete("pictures/a", cwd: dir)
        #expect(two.text == "pictures/a1111-" && two.candidates == ["a1111-one.png", "a1111-two.png"])
        #expect(PathCompletion.complete(dir + "/pictures/b", cwd: "/") == (dir + "/pictures/b.png", ["b.png"]))
        #expect(PathCompletion.complete("pictures/z", cwd: dir).candidates.isEmpty)
        #expect(PathCompletion.complete("pictures/", cwd: dir).candidates.count == 3, "hidden files only when asked for")
        #expect(PathCompletion.complete("pictures/.h", cwd: dir).text == "pictures/.hidden.png")
    }

    // MARK: gallery sessions

    @Test("the session picker lists only folders that are sessions")
    func sessionList() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-sessions-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try GallerySession(directory: root + "/2025-01-01_10-00-00").add(image: RGBImage(width: 8, height: 8),
                                                                           record: ImageRecord(parameters: GenerationParameters(seed: 3)))
        try fm.createDirectory(atPath: root + "/lost-journal", withIntermediateDirectories: true)
        try PNGFile.write(RGBImage(width: 8, height: 8), to: root + "/lost-journal/00007-12.png")
        try fm.createDirectory(atPath: root + "/photos", withIntermediateDirectories: true)
        try PNGFile.write(RGBImage(width: 8, height: 8), to: root + "/photos/holiday.png")
        try fm.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/node_modules", withIntermediateDirectories: true)
        #expect(GallerySession.listSessions(root: root).map(\.name) == ["lost-journal", "2025-01-01_10-00-00"])
        #expect(GallerySession.listSessions(root: root, include: root + "/empty").map(\.name) == ["lost-journal", "empty", "2025-01-01_10-00-00"],
                "the open session is listed even before its first image")
        #expect(GallerySession.isSessionImageName("00012-4242.png") && !GallerySession.isSessionImageName("holiday.png"))
        #expect(!GallerySession.isSessionImageName("12-4.png") && !GallerySession.isSessionImageName("00012-.png"))
    }

    @Test("writeProblem: a writable, a missing-but-creatable, a blocked and a file path; nothing is left behind")
    func sessionWriteChecks() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-write-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        #expect(GallerySession.writeProblem(directory: root) == nil)
        #expect(GallerySession.writeProblem(directory: root + "/new/deeper/s") == nil)
        #expect(!FileManager.default.fileExists(atPath: root + "/new"), "checking creates nothing")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
        FileManager.default.createFile(atPath: root + "/file", contents: Data("x".utf8))
        #expect(GallerySession.writeProblem(directory: root + "/file")?.contains("is a file") == true)
        #expect(GallerySession.writeProblem(directory: root + "/file/s")?.contains("is not a folder") == true)
        #expect(GallerySession.writeProblem(directory: "/dev/null/kolors-session") != nil)
        #expect(GallerySession.writeProblem(directory: "/proc/kolors-session") != nil, "a folder no one can create")
    }

    @Test("a session whose index cannot be rewritten (read-only) still shows its readable PNGs")
    func readOnlySessionShowsItsImages() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-ro-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for i in 1...2 {
            let record = ImageRecord(parameters: GenerationParameters(prompt: "kept \(i)", seed: UInt64(i)))
            try PNGFile.write(RGBImage(width: 8, height: 8), to: dir + "/0000\(i)-\(i).png", texts: ImageMetadata.texts(for: record))
        }
        // a journal that cannot be read or replaced (a folder in its place; a read-only session behaves the same)
        try FileManager.default.createDirectory(atPath: dir + "/" + GallerySession.journalName, withIntermediateDirectories: false)
        let (s, report) = try GallerySession.open(directory: dir)
        #expect(s.entries.map(\.parameters.prompt) == ["kept 1", "kept 2"])
        #expect(report.recoveredFromPNG == 2 && !report.compacted)
        #expect(report.notes.contains { $0.contains("could not be written") })
    }

    @Test("add() never replaces a file the session has not indexed yet, and indexing keeps images saved meanwhile")
    func addAndIndexRace() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-race-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let earlier = GallerySession(directory: dir)
        let old = try earlier.add(image: RGBImage(width: 8, height: 8), record: ImageRecord(parameters: GenerationParameters(prompt: "old", seed: 5)))
        #expect(old.file == "00001-5.png")
        // a new object, not indexed yet (the studio at start-up while the index runs)
        let s = GallerySession(directory: dir)
        let new = try s.add(image: RGBImage(width: 9, height: 9), record: ImageRecord(parameters: GenerationParameters(prompt: "new", seed: 5)))
        #expect(new.file != "00001-5.png", "the older image is not replaced")
        #expect(try PNGFile.read(dir + "/00001-5.png").image.width == 8)
        _ = try s.index()
        #expect(s.entries.map(\.file) == ["00001-5.png", new.file])
        #expect(s.entries.map(\.parameters.prompt) == ["old", "new"])
    }
}

/// Collects generator events from any thread (tests).
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [GenerationEvent] = []
    func add(_ e: GenerationEvent) { lock.withLock { events.append(e) } }
    var all: [GenerationEvent] { lock.withLock { events } }
}
