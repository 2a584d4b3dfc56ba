import Foundation
import KolorsImageIO
import KolorsPipelines

/// The studio's update function: applies an action to the state and returns the effects the
/// shell must carry out. Pure: no I/O, no clocks, no randomness outside the state.
public func reduce(_ s: inout StudioState, _ action: Action) -> [Effect] {
    switch action {
    case .key(let key): return handleKey(&s, key)
    case .paste(let text): return handlePaste(&s, text)
    case .resize(let w, let h):
        s.width = max(1, w)
        s.height = max(1, h)
        return []
    case .tick(let now, let rss):
        s.now = now
        if let rss { s.rssBytes = rss }
        if let m = s.message, let e = m.expires, e <= now { s.message = nil }
        return []
    case .generatorStatus(let status):
        let before = s.bannerText?.0
        s.generator = status
        if case .ready(let description, let isDemo) = status {
            s.params.model = description
            if isDemo && !s.sizeChosen && s.params.width == GenerationParameters.defaultWidth
                && s.params.height == GenerationParameters.defaultHeight {
                // the demo checkpoint's images are noise at any size: start small and fast
                s.params.width = ParameterRules.demoSize
                s.params.height = ParameterRules.demoSize
            }
        }
        // the banner's notice goes into the message log too (the banner row may cut it)
        if let (text, kind) = s.bannerText, text != before { logMessage(&s, text, kind) }
        return startNextIfIdle(&s)
    case .generation(let id, let event): return handleGenerationEvent(&s, id, event)
    case .jobSaved(let id, let entries, let final):
        updateJob(&s, id) { job in
            job.phase = .finished
            job.files = entries.map(\.file)
            job.step = job.totalSteps
        }
        for e in entries where !s.gallery.entries.contains(where: { $0.file == e.file }) { s.gallery.entries.append(e) }
        if let final {
            s.previewSerial += 1
            s.preview = PreviewFrame(image: final, caption: "#\(id) \(entries.first?.file ?? "done")", serial: s.previewSerial)
        }
        let secs = entries.first?.seconds.map { String(format: " in %.1f s", $0) } ?? ""
        let names = entries.count == 1 ? entries[0].file : "\(entries.count) images"
        post(&s, "#\(id) saved \(names)\(secs)", .success, for: 8)
        return startNextIfIdle(&s)
    case .jobCancelled(let id):
        var doneSteps = 0, total = 0
        updateJob(&s, id) { job in job.phase = .cancelled; doneSteps = job.step; total = job.totalSteps }
        post(&s, "#\(id) cancelled after \(doneSteps)/\(total) steps; nothing saved", .warning, for: 8)
        return startNextIfIdle(&s)
    case .jobFailed(let id, let message):
        updateJob(&s, id) { $0.phase = .failed(message) }
        post(&s, "#\(id) failed: \(message)", .error, for: nil)
        return startNextIfIdle(&s)
    case .jobSaveFailed(let id, let saved, let unsaved, let message):
        updateJob(&s, id) { job in
            job.phase = .unsaved(message)
            job.files = saved.map(\.file)
            job.step = job.totalSteps
        }
        for e in saved where !s.gallery.entries.contains(where: { $0.file == e.file }) { s.gallery.entries.append(e) }
        s.unsaved += unsaved
        if let first = unsaved.first {
            s.previewSerial += 1
            s.preview = PreviewFrame(image: first.image, caption: "#\(id) not saved", serial: s.previewSerial)
        }
        let n = unsaved.count
        post(&s, "#\(id): \(message) — \(n == 1 ? "the image is" : "\(n) images are") kept in memory: Ctrl-S saves "
             + (s.unsaved.count == n ? (n == 1 ? "it" : "them") : "all \(s.unsaved.count)") + " elsewhere", .error, for: nil)
        return startNextIfIdle(&s)
    case .unsavedSaved(let folder, let files):
        // the images that were kept when Ctrl-S was pressed (a job failing meanwhile adds more)
        s.unsaved.removeFirst(min(files.count, s.unsaved.count))
        for i in s.jobs.indices {
            if case .unsaved = s.jobs[i].phase, !s.unsaved.contains(where: { $0.jobID == s.jobs[i].id }) { s.jobs[i].phase = .finished }
        }
        if s.linePrompt?.purpose == .saveUnsaved { s.linePrompt = nil }
        let names = files.count == 1 ? files[0] : "\(files.count) images"
        post(&s, "saved \(names) into \(tildePath(folder))", .success, for: 10)
        return []
    case .unsavedSaveFailed(let folder, let message):
        if s.linePrompt?.purpose == .saveUnsaved {
            s.linePrompt!.busy = false
            s.linePrompt!.note = (message, true)
        } else {
            post(&s, "cannot save into \(tildePath(folder)): \(message)", .error, for: nil)
        }
        return []
    case .parametersLoadFailed(let path, let message):
        if s.linePrompt?.purpose == .loadParameters {
            s.linePrompt!.busy = false
            s.linePrompt!.note = (message, true)
            logMessage(&s, "cannot load parameters from \(path): \(message)", .error)
        } else {
            post(&s, "cannot load parameters from \(path): \(message)", .error, for: 10)
        }
        return []
    case .pathCompleted(let typed, let text, let candidates):
        guard var lp = s.linePrompt, lp.editor.text == typed else { return [] }
        if text != typed { lp.editor.setText(text) }
        if candidates.count > 1 {
            lp.note = (candidates.joined(separator: "  "), false)
        } else if candidates.isEmpty {
            lp.note = ("no match", true)
        } else {
            lp.note = nil
        }
        s.linePrompt = lp
        return []
    case .sessionChecked(let path, let problem):
        guard path == s.gallery.sessionPath else { return [] }
        let was = s.gallery.problem
        s.gallery.problem = problem
        if let problem, problem != was {
            post(&s, "images cannot be saved in this session (\(tildePath(path))): \(problem) — start with --session DIR "
                 + "elsewhere, or Ctrl-O, o opens another session", .error, for: nil)
        } else if problem == nil, was != nil {
            post(&s, "the session folder can take images again", .success, for: 6)
        }
        return []
    case .tokenCounts(let p, let n):
        s.promptTokens = p
        s.negativeTokens = n
        return []
    case .galleryLoaded(let path, let entries, let notes):
        if path != s.gallery.sessionPath { s.gallery.problem = nil }
        s.gallery.sessionPath = path
        s.gallery.indexing = false
        s.gallery.entries = entries
        s.gallery.selected = max(0, entries.count - 1)
        s.gallery.fullView = false
        s.gallery.confirmingDelete = false
        s.gallery.pickingSession = false
        if !notes.isEmpty { post(&s, "session repaired: " + notes.joined(separator: "; "), .warning, for: 10) }
        return []
    case .galleryEntriesChanged(let entries):
        s.gallery.entries = entries
        s.gallery.selected = min(s.gallery.selected, max(0, entries.count - 1))
        return []
    case .sessionsListed(let sessions):
        s.gallery.sessions = sessions
        s.gallery.sessionSelected = sessions.firstIndex { $0.path == s.gallery.sessionPath } ?? 0
        return []
    case .parametersLoaded(let parsed, let from), .sessionRestored(let parsed, let from):
        var restoring = false
        if case .sessionRestored = action { restoring = true }
        if restoring && s.fieldsTouched {
            post(&s, "kept your edits; the session's last parameters (\((from as NSString).lastPathComponent)) are in the gallery: "
                 + "Ctrl-O, r reloads them", .info, for: 8)
            return []
        }
        if !restoring { s.fieldsTouched = true }
        var notes: [String] = []
        if !restoring, s.linePrompt?.purpose == .loadParameters { s.linePrompt = nil }
        let effects = applyParameters(&s, parsed.parameters, keepLoRAs: restoring && s.lorasFromFlags, restoring: restoring,
                                      batchIndex: parsed.batchIndex, foreign: parsed.source != .kolors, notes: &notes)
        let name = (from as NSString).lastPathComponent
        let source = parsed.source == .kolors ? "" : " (A1111 text)"
        let warnings = parsed.warnings + notes
        let seedNote = restoring ? (s.seedLocked ? "seed locked" : "new seed each run") : "seed locked"
        if warnings.isEmpty {
            post(&s, "\(restoring ? "restored" : "loaded") the parameters of \(name)\(source); \(seedNote)", .success, for: 8)
        } else {
            post(&s, "\(restoring ? "restored" : "loaded") \(name)\(source): " + warnings.joined(separator: "; ") + "; \(seedNote)",
                 .warning, for: 12)
        }
        return effects
    case .configureAdapters(let o):
        s.ipAdapter = o.ipAdapter
        s.loraDirs = o.loraDirs
        s.workingDirectory = o.workingDirectory
        s.lorasFromFlags = !o.loras.isEmpty
        var effects: [Effect] = []
        for l in o.loras {
            effects += appendLoRA(&s, .init(path: l.path, weight: ParameterRules.clampLoRAWeight(l.weight)), origin: .loaded)
        }
        return effects
    case .referenceChecked(let path, let result):
        guard s.ipImageStatus.path == path else { return [] }      // the field changed meanwhile
        let name = (path as NSString).lastPathComponent
        switch result {
        case .ok(let w, let h):
            s.ipImageStatus = .ok(path, width: w, height: h)
        case .failed(let why):
            s.ipImageStatus = .failed(path, why)
            post(&s, "reference image \(name): \(why)", .error, for: 10)
        }
        return []
    case .loraInspected(let id, let result):
        return loraInspected(&s, id, result)
    case .previewLoaded(let image, let caption):
        s.previewSerial += 1
        s.preview = PreviewFrame(image: image, caption: caption, serial: s.previewSerial)
        return []
    case .themeApplied(let name):
        s.themeName = name
        s.repaintSerial += 1
        post(&s, "theme: \(name)", .info, for: 4)
        return []
    case .themesFound(let names):
        s.themeNames = names
        return []
    case .failure(let text):
        post(&s, text, .error, for: nil)
        return []
    }
}

// MARK: - helpers

func post(_ s: inout StudioState, _ text: String, _ kind: StatusMessage.Kind, for seconds: Double?) {
    s.message = StatusMessage(text: text, kind: kind, expires: seconds.map { s.now + $0 }, posted: s.now)
    logMessage(&s, text, kind)
}

/// Messages kept in the log (Ctrl-N); the oldest go first.
public let messageLogLimit = 500

/// Keeps a message in the log without showing it on the status line.
func logMessage(_ s: inout StudioState, _ text: String, _ kind: StatusMessage.Kind) {
    s.messageLog.append(StatusMessage(text: text, kind: kind, expires: nil, posted: s.now))
    if s.messageLog.count > messageLogLimit { s.messageLog.removeFirst(s.messageLog.count - messageLogLimit) }
}

func updateJob(_ s: inout StudioState, _ id: Int, _ change: (inout Job) -> Void) {
    if let i = s.jobs.firstIndex(where: { $0.id == id }) { change(&s.jobs[i]) }
}

/// Starts the first queued job when the generator is free and ready; fails queued jobs when there is no generator.
func startNextIfIdle(_ s: inout StudioState) -> [Effect] {
    guard !s.quitting, s.activeJob == nil, let i = s.jobs.firstIndex(where: { $0.phase == .queued }) else { return [] }
    switch s.generator {
    case .loading: return []
    case .failed(let why):
        for k in s.jobs.indices where s.jobs[k].phase == .queued { s.jobs[k].phase = .failed(why) }
        post(&s, "cannot generate: \(why)", .error, for: nil)
        return []
    case .ready:
        if let problem = s.gallery.problem {
            for k in s.jobs.indices where s.jobs[k].phase == .queued { s.jobs[k].phase = .failed(problem) }
            post(&s, "queued jobs not started: images cannot be saved in \(tildePath(s.gallery.sessionPath)): \(problem)",
                 .error, for: nil)
            return []
        }
        s.jobs[i].phase = .starting
        return [.startJob(s.jobs[i])]
    }
}

func trimHistory(_ s: inout StudioState) {
    let done = s.jobs.filter { $0.phase.isDone }
    if done.count > 40, let first = s.jobs.firstIndex(where: { $0.phase.isDone }) { s.jobs.remove(at: first) }
}

/// Puts loaded parameters into the editor and fields, including the reference image, its scale
/// and the LoRA list; returns the checks to run on them. Loading an image (Ctrl-P, the gallery's
/// `r`) locks the seed so the image can be remade; restoring a session's last image at start-up
/// (`restoring`) keeps the user's seed mode and, with "new each run", rolls a new seed (the next
/// Ctrl-G must not remake the same image). One image of a seed+i batch (ours, or A1111's, whose
/// `Seed` is each image's own) comes back as that seed with one image: Ctrl-G remakes it alone.
func applyParameters(_ s: inout StudioState, _ p: GenerationParameters, keepLoRAs: Bool = false, restoring: Bool = false,
                     batchIndex: Int = 0, foreign: Bool = false, notes: inout [String]) -> [Effect] {
    s.prompt.setText(p.prompt)
    s.negative.setText(p.negativePrompt)
    s.initImage.setText(p.initImage ?? "")
    var q = p
    q.steps = ParameterRules.clampSteps(p.steps)
    q.guidance = ParameterRules.clampGuidance(p.guidance)
    q.width = ParameterRules.clampDimension(p.width)
    q.height = ParameterRules.clampDimension(p.height)
    if q.width != p.width || q.height != p.height {
        notes.append("size \(p.width)×\(p.height) adjusted to \(q.width)×\(q.height) (\(ParameterRules.sizeRuleText))")
    }
    q.imagesPerPrompt = ParameterRules.clampImages(p.imagesPerPrompt)
    q.strength = ParameterRules.clampStrength(p.strength)
    if SchedulerKind(rawValue: q.scheduler) == nil { q.scheduler = GenerationParameters.defaultScheduler }
    q.model = s.params.model
    q.ipAdapter = nil
    q.loras = []
    if p.imagesPerPrompt > 1 && restoring {
        // the session goes on as the batch was made: its first seed, its size
        if p.batchSeeds == .increment || foreign {
            q.seed = p.seed &- UInt64(max(0, batchIndex))
            q.batchSeeds = .increment
        }
    } else if p.imagesPerPrompt > 1 {
        let position = "image \(batchIndex + 1) of a batch of \(p.imagesPerPrompt)"
        if p.batchSeeds == .increment || foreign {
            // its recorded seed is its own (seed+i): one image with that seed remakes it alone
            q.imagesPerPrompt = 1
            q.batchSeeds = .increment
            if !restoring { notes.append("\(position) (seed+i): seed \(p.seed), 1 image remakes it alone") }
        } else if !restoring {
            notes.append("\(position) sharing seed \(p.seed): Ctrl-G remakes the whole batch (it is #\(batchIndex + 1))")
        }
    }
    s.params = q
    s.sizeChosen = true
    if restoring {
        if !s.seedLocked { s.params.seed = s.seeds.nextSeed() }
    } else {
        s.seedLocked = true
    }
    s.fieldInput = nil
    var effects: [Effect] = []
    // IP-Adapter: the reference image and its scale (the session's adapter wins; without one the record's is used)
    if let ip = p.ipAdapter {
        if s.ipAdapter == nil {
            s.ipAdapter = IPAdapterConfig(path: ip.path, imageEncoder: ip.imageEncoder)
            notes.append("IP-Adapter \((ip.path as NSString).lastPathComponent) taken from the image")
        }
        s.ipImage.setText(ip.image)
        s.ipScale = ParameterRules.clampIPScale(ip.scale)
        s.ipImageStatus = .none
        effects += commitReference(&s, force: true)
    } else {
        s.ipImage.setText("")
        s.ipImageStatus = .none
        s.ipScale = ParameterRules.defaultIPScale
    }
    // LoRAs: found by path, else by name in the known folders; checked and hashed in the background
    if !keepLoRAs {
        let dirs = s.loraSearchDirs
        s.loras = []
        s.loraSelected = 0
        var clamped: [String] = []
        for l in p.loras {
            let w = ParameterRules.clampLoRAWeight(l.weight)
            if w != l.weight { clamped.append(l.name) }
            effects += appendLoRA(&s, .init(path: l.path, weight: w), origin: .loaded, recordedHash: l.hash, searchDirs: dirs)
        }
        if !clamped.isEmpty { notes.append("LoRA weight limited to −2…2: " + clamped.joined(separator: ", ")) }
    }
    return effects
}

/// Adds a LoRA entry and asks for its check; `searchDirs` default to the session's LoRA folders.
func appendLoRA(_ s: inout StudioState, _ settings: GenerationParameters.LoRASettings, origin: LoRAEntry.Origin,
                recordedHash: String? = nil, searchDirs: [String]? = nil) -> [Effect] {
    let id = s.nextLoRAID
    s.nextLoRAID += 1
    let dirs = searchDirs ?? s.loraSearchDirs
    var settings = settings
    settings.hash = nil
    s.loras.append(LoRAEntry(id: id, settings: settings, status: .checking, origin: origin, recordedHash: recordedHash))
    return [.inspectLoRA(id: id, path: settings.path, searchDirs: dirs)]
}

/// A background check of a LoRA finished.
func loraInspected(_ s: inout StudioState, _ id: Int, _ result: LoRAInspection) -> [Effect] {
    guard let i = s.loras.firstIndex(where: { $0.id == id }) else { return [] }
    let entry = s.loras[i]
    func drop() {
        s.loras.remove(at: i)
        s.loraSelected = min(s.loraSelected, max(0, s.loras.count - 1))
    }
    switch result {
    case .found(let path, let hash):
        if s.loras.contains(where: { $0.id != id && $0.settings.path == path && $0.isUsable }) {
            drop()
            post(&s, "\(entry.name) is already in the list (←/→ change its weight)", .info, for: 6)
            return []
        }
        s.loras[i].settings.path = path
        s.loras[i].settings.hash = hash
        s.loras[i].status = .ready
        let folder = (path as NSString).deletingLastPathComponent
        if !s.loraFolders.contains(folder) { s.loraFolders.append(folder) }
        if let rec = entry.recordedHash, rec.lowercased() != hash.lowercased() {
            post(&s, "LoRA \(entry.name): this file's hash \(hash) differs from the image's \(rec) (another version?)", .warning, for: 12)
        } else if entry.origin == .added {
            post(&s, "added LoRA \(entry.name) \(ParameterRules.formatWeight(entry.settings.weight)) (hash \(hash))", .success, for: 6)
        }
    case .notFound(let searched):
        let looked = searched.isEmpty ? "no LoRA folders known: add one with --lora-dir DIR"
            : "looked in " + searched.map(tildePath).joined(separator: ", ")
        if entry.origin == .added {
            drop()
            post(&s, "cannot add \(entry.settings.path): no such file (\(looked))", .error, for: 12)
        } else {
            s.loras[i].status = .missing
            let names = s.loras.filter { $0.status == .missing }.map(\.name)
            post(&s, "LoRA\(names.count == 1 ? "" : "s") not found: \(names.joined(separator: ", ")) — jobs leave "
                 + (names.count == 1 ? "it" : "them") + " out; \(looked)", .warning, for: 20)
        }
    case .failed(let why):
        if entry.origin == .added {
            drop()
            post(&s, "cannot add \(entry.name): \(why)", .error, for: 12)
        } else {
            s.loras[i].status = .failed(why)
            post(&s, "LoRA \(entry.name): \(why); jobs leave it out", .error, for: 12)
        }
    }
    return []
}

/// Checks the reference image field when it changed (or always with `force`); clears its status when empty.
func commitReference(_ s: inout StudioState, force: Bool = false) -> [Effect] {
    guard s.ipAdapter != nil else { return [] }
    let path = s.ipImagePath
    if path.isEmpty {
        s.ipImageStatus = .none
        return []
    }
    if !force, s.ipImageStatus.path == path {
        if case .failed = s.ipImageStatus {} else { return [] }
    }
    s.ipImageStatus = .checking(path)
    return [.checkReference(path: path)]
}

/// Moves the focus, applying typed input and checking a reference image that was being edited.
func setFocus(_ s: inout StudioState, _ field: Field) -> [Effect] {
    commitFieldInput(&s)
    var effects: [Effect] = []
    if s.focus == .ipImage && field != .ipImage { effects += commitReference(&s) }
    s.focus = field
    return effects
}

func handleGenerationEvent(_ s: inout StudioState, _ id: Int, _ event: GenerationEvent) -> [Effect] {
    guard let i = s.jobs.firstIndex(where: { $0.id == id }) else { return [] }
    let cancelling = s.jobs[i].phase == .cancelling
    switch event {
    case .loading(let what, let f):
        if !cancelling { s.jobs[i].phase = .loading(what, fraction: f) }
    case .started(let total):
        if !cancelling { s.jobs[i].phase = .running }
        s.jobs[i].totalSteps = total
        s.jobs[i].step = 0
    case .step(let index, let total, let sps, let preview):
        if !cancelling { s.jobs[i].phase = .running }
        s.jobs[i].step = index
        s.jobs[i].totalSteps = total
        s.jobs[i].secondsPerStep = sps
        if let preview {
            s.previewSerial += 1
            s.preview = PreviewFrame(image: preview, caption: "#\(id) step \(index)/\(total)", serial: s.previewSerial, live: true)
        }
    case .decoding:
        if !cancelling { s.jobs[i].phase = .decoding }
    case .finished:
        if !cancelling { s.jobs[i].phase = .saving }
    }
    return []
}

// MARK: - keys

func handlePaste(_ s: inout StudioState, _ text: String) -> [Effect] {
    if s.linePrompt != nil {
        s.linePrompt!.editor.insert(text)
        s.linePrompt!.note = nil
        return []
    }
    if s.galleryVisible || s.helpVisible || s.logVisible || s.fullPreview || s.confirmingQuit != nil { return [] }
    s.fieldsTouched = true
    switch s.focus {
    case .prompt: s.prompt.insert(text)
    case .negative: s.negative.insert(text)
    case .initImage: s.initImage.insert(text)
    case .ipImage:
        if s.ipAdapter != nil { s.ipImage.insert(text) } else { postIPAdapterOff(&s) }
    case .loras where Float(text.trimmingCharacters(in: .whitespacesAndNewlines)) == nil:
        // a pasted path (not a weight) adds that LoRA
        let spec = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return spec.isEmpty || spec.contains("\n") ? [] : addLoRA(&s, spec)
    case .loras where s.loras.isEmpty:
        return []
    default:
        let allowed = text.filter { allowedInput(s.focus, $0) }
        if !allowed.isEmpty { s.fieldInput = (s.fieldInput ?? "") + allowed }
    }
    return []
}

/// What quitting now would lose (nil: nothing).
func workAtRisk(_ s: StudioState) -> QuitConfirmation? {
    let q = QuitConfirmation(running: s.activeJob?.id, queued: s.queuedJobs.count, unsaved: s.unsaved.count)
    return q.running == nil && q.queued == 0 && q.unsaved == 0 ? nil : q
}

func quit(_ s: inout StudioState) -> [Effect] {
    s.quitting = true
    s.confirmingQuit = nil
    var effects: [Effect] = []
    if let job = s.activeJob { effects.append(.cancelJob(job.id)) }
    return effects + [.quit]
}

func handleKey(_ s: inout StudioState, _ key: Key) -> [Effect] {
    // quitting works everywhere; it asks first when a job is running or queued, or images are unsaved
    if s.confirmingQuit != nil {
        if key == .character("y") || key == .character("Y") || key == .ctrl("q") || key == .ctrl("c") { return quit(&s) }
        s.confirmingQuit = nil
        post(&s, "not quitting", .info, for: 3)
        return []
    }
    if key == .ctrl("q") || key == .ctrl("c") {
        if let q = workAtRisk(s) {
            s.confirmingQuit = q
            return []
        }
        return quit(&s)
    }
    if key == .ctrl("z") { return [.suspend] }
    if let _ = s.linePrompt { return handleLinePromptKey(&s, key) }
    if key == .function(1) {
        s.helpVisible.toggle()
        s.helpScroll = 0
        return []
    }
    if key == .ctrl("n") {
        s.logVisible.toggle()
        s.logScroll = 0
        return []
    }
    if s.logVisible {
        switch key {
        case .escape, .enter, .character("q"): s.logVisible = false
        case .up, .pageUp: s.logScroll += key == .up ? 1 : 10
        case .down, .pageDown: s.logScroll = max(0, s.logScroll - (key == .down ? 1 : 10))
        case .home: s.logScroll = s.messageLog.count * 4
        case .end: s.logScroll = 0
        case .ctrl("g"): return generate(&s)
        default: break
        }
        return []
    }
    if s.helpVisible {
        switch key {
        case .escape, .enter, .character("q"): s.helpVisible = false
        case .down, .pageDown: s.helpScroll += key == .down ? 1 : 10
        case .up, .pageUp: s.helpScroll = max(0, s.helpScroll - (key == .up ? 1 : 10))
        case .ctrl("g"): return generate(&s)
        default: break
        }
        return []
    }
    switch key {
    case .ctrl("g"): return generate(&s)
    case .ctrl("f"):
        s.fullPreview.toggle()
        if s.fullPreview { s.galleryVisible = false }
        return []
    case .ctrl("s"):
        guard !s.unsaved.isEmpty else {
            post(&s, "nothing to save: every finished image is in the session", .info, for: 4)
            return []
        }
        let n = s.unsaved.count
        s.linePrompt = LinePrompt(purpose: .saveUnsaved,
                                  title: "Save \(n) unsaved image\(n == 1 ? "" : "s") into the folder (created if missing)",
                                  editor: TextEditor((s.workingDirectory as NSString).appendingPathComponent("kolors-unsaved"),
                                                     singleLine: true))
        return []
    case .ctrl("o"):
        s.galleryVisible.toggle()
        if s.galleryVisible {
            s.gallery.selected = max(0, s.gallery.entries.count - 1)
            s.gallery.fullView = false
            s.gallery.confirmingDelete = false
            s.gallery.pickingSession = false
        }
        return []
    case .ctrl("p"):
        s.linePrompt = LinePrompt(purpose: .loadParameters, title: "Load all parameters from a PNG")
        return []
    case .ctrl("x"):
        var n = 0
        for i in s.jobs.indices where s.jobs[i].phase == .queued { s.jobs[i].phase = .cancelled; n += 1 }
        post(&s, n == 0 ? "no queued jobs" : "dropped \(n) queued job(s)", .info, for: 5)
        return []
    case .function(2):
        guard !s.themeNames.isEmpty else { return [] }
        let i = s.themeNames.firstIndex(of: s.themeName) ?? -1
        return [.applyTheme(s.themeNames[(i + 1) % s.themeNames.count])]
    case .ctrl("l"):
        s.repaintSerial += 1
        return [.redraw]
    default: break
    }
    if s.galleryVisible { return handleGalleryKey(&s, key) }
    if s.fullPreview {
        // the full view covers the editors: Esc (or Ctrl-F) goes back, typing waits
        if key == .escape { s.fullPreview = false }
        return []
    }
    if key != .escape && key != .tab && key != .backTab { s.fieldsTouched = true }
    switch key {
    case .escape: return cancelOrClear(&s)
    case .tab: return setFocus(&s, s.focus.next)
    case .backTab: return setFocus(&s, s.focus.previous)
    default: break
    }
    switch s.focus {
    case .prompt: editorKey(&s.prompt, key, width: editorWidth(s, .prompt))
    case .negative: editorKey(&s.negative, key, width: editorWidth(s, .negative))
    case .initImage:
        if key == .enter || key == .down { s.focus = s.focus.next } else if key == .up { s.focus = s.focus.previous } else {
            editorKey(&s.initImage, key, width: 1000)
        }
    case .ipImage:
        if key == .enter {
            // Enter checks the path (again) and moves on to the scale
            let effects = commitReference(&s, force: true)
            s.focus = .ipScale
            return effects
        }
        if key == .down { return setFocus(&s, .ipScale) }
        if key == .up { return setFocus(&s, s.focus.previous) }
        if s.ipAdapter == nil {
            if case .character = key { postIPAdapterOff(&s) }
            return []
        }
        editorKey(&s.ipImage, key, width: 1000)
    case .loras: return loraKey(&s, key)
    default: return valueKey(&s, key)
    }
    return []
}

func postIPAdapterOff(_ s: inout StudioState) {
    post(&s, "IP-Adapter is off: start the studio with --ip-adapter PATH (Kolors-IP-Adapter-Plus weights or folder)", .warning, for: 8)
}

/// Keys of the LoRA list.
func loraKey(_ s: inout StudioState, _ key: Key) -> [Effect] {
    let n = s.loras.count
    s.loraSelected = min(max(0, s.loraSelected), max(0, n - 1))
    switch key {
    case .character("a"), .character("A"), .insert:
        commitFieldInput(&s)
        s.linePrompt = LinePrompt(purpose: .addLoRA,
                                  title: "Add a LoRA: .safetensors path or name[:weight] (Enter adds, Esc closes)",
                                  editor: TextEditor(singleLine: true))
        return []
    case .enter where s.fieldInput == nil && n == 0:
        return loraKey(&s, .character("a"))
    case .character("d"), .character("D"), .delete:
        s.fieldInput = nil
        guard n > 0 else { return [] }
        let e = s.loras.remove(at: s.loraSelected)
        s.loraSelected = min(s.loraSelected, max(0, s.loras.count - 1))
        post(&s, "removed LoRA \(e.name)", .info, for: 5)
        return []
    case .up, .down:
        commitFieldInput(&s)
        let d = key == .up ? -1 : 1
        let j = s.loraSelected + d
        if n == 0 || j < 0 || j >= n { return setFocus(&s, key == .up ? s.focus.previous : s.focus.next) }
        s.loraSelected = j
        return []
    case .ctrlUp, .ctrlDown, .character("["), .character("]"):
        commitFieldInput(&s)
        let d = (key == .ctrlUp || key == .character("[")) ? -1 : 1
        let j = s.loraSelected + d
        guard n > 1, j >= 0, j < n else { return [] }
        s.loras.swapAt(s.loraSelected, j)
        s.loraSelected = j
        return []
    default:
        return valueKey(&s, key)
    }
}

func cancelOrClear(_ s: inout StudioState) -> [Effect] {
    if let job = s.activeJob {
        if job.phase == .cancelling {
            post(&s, "#\(job.id) is already stopping", .info, for: 4)
            return []
        }
        updateJob(&s, job.id) { $0.phase = .cancelling }
        post(&s, "cancelling #\(job.id)…", .warning, for: nil)
        return [.cancelJob(job.id)]
    }
    if s.fieldInput != nil {
        s.fieldInput = nil
        return []
    }
    post(&s, "nothing to cancel", .info, for: 3)
    return []
}

/// Width of an editor's text area for the current layout (for wrapping and vertical movement).
public func editorWidth(_ s: StudioState, _ field: Field) -> Int {
    let l = s.layout
    let r = field == .negative ? l.negative : l.prompt
    return max(2, r.inner.width)
}

/// Keys for a text editor; returns whether the key was used.
@discardableResult
public func editorKey(_ e: inout TextEditor, _ key: Key, width: Int) -> Bool {
    switch key {
    case .character(let c): e.insert(String(c))
    case .enter: e.insert("\n")
    case .backspace: e.deleteBackward()
    case .delete: e.deleteForward()
    case .left: e.moveLeft()
    case .right: e.moveRight()
    case .up: e.moveUp(width: width)
    case .down: e.moveDown(width: width)
    case .home, .ctrl("a"): e.moveHome(width: width)
    case .end, .ctrl("e"): e.moveEnd(width: width)
    case .ctrlLeft, .alt("b"): e.moveWordLeft()
    case .ctrlRight, .alt("f"): e.moveWordRight()
    case .ctrlHome: e.moveToStart()
    case .ctrlEnd: e.moveToEnd()
    case .ctrl("w"), .altBackspace: e.deleteWordBackward()
    case .alt("d"), .ctrlDelete: e.deleteWordForward()
    case .ctrl("u"): e.deleteToLineStart()
    case .ctrl("k"): e.deleteToLineEnd()
    case .pageUp: e.moveVertically(by: -10, width: width)
    case .pageDown: e.moveVertically(by: 10, width: width)
    default: return false
    }
    return true
}

func allowedInput(_ f: Field, _ c: Character) -> Bool {
    switch f {
    case .steps, .images, .seed: return c.isASCII && c.isNumber
    case .guidance, .strength, .ipScale, .loras: return (c.isASCII && c.isNumber) || c == "."
    case .size: return (c.isASCII && c.isNumber) || c == "x" || c == "×" || c == "X"
    default: return false
    }
}

func currentValueText(_ s: StudioState, _ f: Field) -> String {
    switch f {
    case .steps: "\(s.params.steps)"
    case .guidance: ImageMetadata.formatFloat(s.params.guidance)
    case .seed: "\(s.params.seed)"
    case .size: "\(s.params.width)x\(s.params.height)"
    case .images: "\(s.params.imagesPerPrompt)"
    case .strength: ImageMetadata.formatFloat(s.params.strength)
    case .ipScale: ParameterRules.formatWeight(s.ipScale)
    case .loras: s.loras.indices.contains(s.loraSelected) ? ParameterRules.formatWeight(s.loras[s.loraSelected].settings.weight) : ""
    default: ""
    }
}

/// Applies typed digits to the focused field (clamped); bad input is dropped with a message.
func commitFieldInput(_ s: inout StudioState) {
    guard let input = s.fieldInput else { return }
    s.fieldInput = nil
    let f = s.focus
    var ok = true
    switch f {
    case .steps: if let n = Int(input) { s.params.steps = ParameterRules.clampSteps(n) } else { ok = false }
    case .images: if let n = Int(input) { s.params.imagesPerPrompt = ParameterRules.clampImages(n) } else { ok = false }
    case .guidance: if let g = Float(input) { s.params.guidance = ParameterRules.clampGuidance(g) } else { ok = false }
    case .strength: if let g = Float(input) { s.params.strength = ParameterRules.clampStrength(g) } else { ok = false }
    case .ipScale: if let g = Float(input) { s.ipScale = ParameterRules.clampIPScale(g) } else { ok = false }
    case .loras:
        if let w = Float(input), s.loras.indices.contains(s.loraSelected) {
            s.loras[s.loraSelected].settings.weight = ParameterRules.clampLoRAWeight(w)
        } else { ok = false }
    case .seed: if let n = UInt64(input) { s.params.seed = n; s.seedLocked = true } else { ok = false }
    case .size:
        if let size = ParameterRules.parseSize(input) {
            s.params.width = size.width
            s.params.height = size.height
            s.sizeChosen = true
            if size.adjusted {
                post(&s, "size '\(input)' adjusted to \(size.width)×\(size.height) (\(ParameterRules.sizeRuleText), as kolors generate)",
                     .warning, for: 8)
            }
        } else { ok = false }
    default: break
    }
    if !ok && !input.isEmpty {
        let what = f == .loras ? "LoRA weight" : f.label.lowercased()
        post(&s, "'\(input)' is not a valid \(what)", .warning, for: 5)
    }
}

@discardableResult
func valueKey(_ s: inout StudioState, _ key: Key) -> [Effect] {
    let f = s.focus
    // typing
    if case .character(let c) = key, allowedInput(f, c), !(f == .seed && (c == "r" || c == "l")) {
        if f == .loras && s.loras.isEmpty { return [] }
        s.fieldInput = (s.fieldInput ?? "") + String(c)
        return []
    }
    if key == .backspace {
        if f == .loras && s.loras.isEmpty { return [] }
        var t = s.fieldInput ?? currentValueText(s, f)
        if !t.isEmpty { t.removeLast() }
        s.fieldInput = t
        return []
    }
    if key == .enter {
        if s.fieldInput != nil { commitFieldInput(&s) } else if f == .scheduler { adjust(&s, f, by: 1) } else if f == .seed {
            s.seedLocked.toggle()
        }
        return []
    }
    if key == .up { return setFocus(&s, f.previous) }
    if key == .down { return setFocus(&s, f.next) }
    var delta = 0
    switch key {
    case .left, .character("-"): delta = -1
    case .right, .character("+"), .character("="): delta = 1
    case .pageDown: delta = -10
    case .pageUp: delta = 10
    default: break
    }
    if delta != 0 {
        commitFieldInput(&s)
        adjust(&s, f, by: delta)
        return []
    }
    switch (f, key) {
    case (.seed, .character("r")):
        s.params.seed = s.seeds.nextSeed()
    case (.seed, .character("l")):
        s.seedLocked = true
    case (.seed, .character(" ")):
        s.seedLocked.toggle()
    case (.scheduler, .character(" ")):
        adjust(&s, f, by: 1)
    case (.size, .character("s")):
        swap(&s.params.width, &s.params.height)
    case (.images, .character(" ")):
        s.params.batchSeeds = s.params.batchSeeds == .shared ? .increment : .shared
        post(&s, s.params.batchSeeds == .shared ? "batch seeds: one seed for the whole batch (diffusers)"
             : "batch seeds: image i uses seed+i (A1111); each image records its own seed", .info, for: 6)
    default: break
    }
    return []
}

func adjust(_ s: inout StudioState, _ f: Field, by delta: Int) {
    switch f {
    case .steps: s.params.steps = ParameterRules.clampSteps(s.params.steps + delta)
    case .guidance:
        s.params.guidance = ParameterRules.clampGuidance(s.params.guidance + Float(delta) * ParameterRules.guidanceStep)
    case .seed:
        let d = Int64(delta) * (abs(delta) > 1 ? 100 : 1)
        s.params.seed = d < 0 ? s.params.seed &- UInt64(-d) : s.params.seed &+ UInt64(d)
        s.seedLocked = true
    case .size:
        let p = ParameterRules.cyclePreset(width: s.params.width, height: s.params.height, by: delta > 0 ? 1 : -1)
        s.params.width = p.width
        s.params.height = p.height
        s.sizeChosen = true
    case .scheduler: s.params.scheduler = ParameterRules.cycleScheduler(s.params.scheduler, by: delta > 0 ? 1 : -1)
    case .images: s.params.imagesPerPrompt = ParameterRules.clampImages(s.params.imagesPerPrompt + (delta > 0 ? 1 : -1))
    case .strength:
        s.params.strength = ParameterRules.clampStrength(s.params.strength + Float(delta) * ParameterRules.strengthStep)
    case .ipScale:
        s.ipScale = ParameterRules.clampIPScale(s.ipScale + Float(delta) * ParameterRules.ipScaleStep)
    case .loras:
        guard s.loras.indices.contains(s.loraSelected) else { return }
        let w = s.loras[s.loraSelected].settings.weight
        s.loras[s.loraSelected].settings.weight = ParameterRules.clampLoRAWeight(w + Float(delta) * ParameterRules.loraWeightStep)
    default: break
    }
}

/// Ctrl-G: snapshot the fields into a job, queue it, start it when the generator is free.
func generate(_ s: inout StudioState) -> [Effect] {
    commitFieldInput(&s)
    // the image would have nowhere to go: say so before any work
    if let problem = s.gallery.problem {
        post(&s, "not queued: images cannot be saved in \(tildePath(s.gallery.sessionPath)): \(problem) — start with "
             + "--session DIR elsewhere, or Ctrl-O, o opens another session", .error, for: nil)
        return []
    }
    // a reference image known to be unusable stops the job (Enter in the field checks it again)
    if s.ipAdapter != nil, case .failed(let path, let why) = s.ipImageStatus, path == s.ipImagePath {
        post(&s, "not queued: reference image \((path as NSString).lastPathComponent): \(why) — fix the path or clear it (Ctrl-U)",
             .error, for: 10)
        return []
    }
    let checks = s.focus == .ipImage ? commitReference(&s) : []
    let p = s.currentParameters
    let job = Job(id: s.nextJobID, parameters: p)
    s.nextJobID += 1
    s.jobs.append(job)
    trimHistory(&s)
    // the seed shown is the seed used; an unlocked seed then rolls for the next job
    if !s.seedLocked { s.params.seed = s.seeds.nextSeed() }
    let busy = s.activeJob != nil || s.jobs.contains { $0.phase == .queued && $0.id != job.id }
    let effects = checks + startNextIfIdle(&s)
    if case .failed = s.generator { return effects }
    var text = busy ? "queued #\(job.id) (seed \(p.seed)); \(s.queuedJobs.count) waiting" : "#\(job.id) started (seed \(p.seed))"
    if case .loading = s.generator { text = "queued #\(job.id) (seed \(p.seed)): waiting for the model to load" }
    let left = s.unusableLoRAs.map(\.name)
    if let t = s.promptTokens, t > GenerationParameters.maxPromptTokens {
        text += " — prompt has \(t) tokens, only the first \(GenerationParameters.maxPromptTokens) are used"
        post(&s, text, .warning, for: 8)
    } else if !left.isEmpty {
        text += " — without LoRA\(left.count == 1 ? "" : "s") \(left.joined(separator: ", ")) (not found)"
        post(&s, text, .warning, for: 8)
    } else {
        post(&s, text, .info, for: 5)
    }
    return effects
}

// MARK: - gallery

func handleGalleryKey(_ s: inout StudioState, _ key: Key) -> [Effect] {
    var g = s.gallery
    defer { s.gallery = g }
    if g.pickingSession {
        switch key {
        case .escape, .character("o"): g.pickingSession = false
        case .up, .character("k"): g.sessionSelected = max(0, g.sessionSelected - 1)
        case .down, .character("j"): g.sessionSelected = min(max(0, g.sessions.count - 1), g.sessionSelected + 1)
        case .enter:
            if g.sessions.indices.contains(g.sessionSelected) {
                g.pickingSession = false
                return [.openSession(path: g.sessions[g.sessionSelected].path)]
            }
        default: break
        }
        return []
    }
    if g.confirmingDelete {
        switch key {
        case .character("y"), .character("Y"):
            g.confirmingDelete = false
            if let e = g.selectedEntry {
                g.entries.remove(at: g.selected)
                g.selected = min(g.selected, max(0, g.entries.count - 1))
                s.gallery = g
                post(&s, "deleted \(e.file)", .info, for: 5)
                return [.deleteImage(file: e.file)]
            }
        default:
            g.confirmingDelete = false
        }
        return []
    }
    let geo = GalleryGeometry.compute(s.layout)
    let n = g.entries.count
    func select(_ i: Int) { if n > 0 { g.selected = min(max(0, i), n - 1) } }
    switch key {
    case .escape:
        if g.fullView { g.fullView = false } else { s.galleryVisible = false }
    case .right, .character("n"), .character("l"): select(g.selected + 1)
    case .left, .character("p"), .character("h"): select(g.selected - 1)
    case .down, .character("j"): select(g.fullView ? g.selected + 1 : g.selected + geo.columns)
    case .up, .character("k"): select(g.fullView ? g.selected - 1 : g.selected - geo.columns)
    case .pageDown: select(g.selected + geo.pageSize)
    case .pageUp: select(g.selected - geo.pageSize)
    case .home: select(0)
    case .end: select(n - 1)
    case .enter: if n > 0 { g.fullView.toggle() }
    case .character("f"):
        if let e = g.selectedEntry {
            g.entries[g.selected].favourite.toggle()
            return [.setFavourite(file: e.file, !e.favourite)]
        }
    case .character("d"), .delete:
        if g.selectedEntry != nil { g.confirmingDelete = true }
    case .character("r"):
        if let e = g.selectedEntry {
            s.galleryVisible = false
            s.gallery = g
            var notes: [String] = []
            s.fieldsTouched = true
            let checks = applyParameters(&s, e.parameters, batchIndex: e.batchIndex, foreign: e.foreign, notes: &notes)
            if notes.isEmpty {
                post(&s, "loaded the parameters of \(e.file); seed locked", .success, for: 8)
            } else {
                post(&s, "loaded \(e.file): " + notes.joined(separator: "; "), .warning, for: 12)
            }
            s.focus = .prompt
            g = s.gallery
            return [.loadPreview(path: (g.sessionPath as NSString).appendingPathComponent(e.file), caption: e.file)] + checks
        }
    case .character("o"):
        g.pickingSession = true
        return [.listSessions]
    default: break
    }
    return []
}

/// Keys of a one-line dialog. Ctrl-P and Ctrl-S stay open until their work succeeds (a failure is
/// shown inside, the path kept for fixing); Tab completes the path.
func handleLinePromptKey(_ s: inout StudioState, _ key: Key) -> [Effect] {
    guard var lp = s.linePrompt else { return [] }
    switch key {
    case .escape:
        s.linePrompt = nil
        return []
    case .tab:
        let text = lp.editor.text
        if lp.purpose == .addLoRA, (try? LoRASpec.parse(text))?.weight != nil { return [] }   // a weight follows the path
        return text.trimmingCharacters(in: .whitespaces).isEmpty ? [] : [.completePath(text)]
    case .enter:
        let path = resolveStudioPath(lp.editor.text.trimmingCharacters(in: .whitespaces), cwd: s.workingDirectory)
        guard !path.isEmpty else { return [] }
        switch lp.purpose {
        case .loadParameters:
            lp.busy = true
            lp.note = nil
            s.linePrompt = lp
            return [.loadParameters(path: path)]
        case .saveUnsaved:
            lp.busy = true
            lp.note = nil
            s.linePrompt = lp
            return [.saveUnsaved(folder: path)]
        case .addLoRA:
            s.linePrompt = nil
            return addLoRA(&s, lp.editor.text)
        }
    default:
        if editorKey(&lp.editor, key, width: 1000) { lp.note = nil }
        s.linePrompt = lp
        return []
    }
}

/// The add-LoRA prompt's text: `path-or-name[:weight]`.
func addLoRA(_ s: inout StudioState, _ text: String) -> [Effect] {
    // a weight that is no finite number is left to the path (as a file name may end in ":x")
    let spec = (try? LoRASpec.parse(text)) ?? LoRASpec(path: text.trimmingCharacters(in: .whitespaces))
    let (raw, weight) = (spec.path, spec.weight)
    let path = resolveStudioPath(raw, cwd: s.workingDirectory, keepBareNames: true)
    guard !path.isEmpty else { return [] }
    s.focus = .loras
    if let i = s.loras.firstIndex(where: { $0.settings.path == path || (!path.contains("/") && $0.name == path) }) {
        s.loraSelected = i
        post(&s, "\(s.loras[i].name) is already in the list (←/→ change its weight)", .info, for: 6)
        return []
    }
    let effects = appendLoRA(&s, .init(path: path, weight: ParameterRules.clampLoRAWeight(weight ?? 1)), origin: .added)
    s.loraSelected = s.loras.count - 1
    return effects
}
