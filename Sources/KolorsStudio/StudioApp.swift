import CNcursesw
import Dispatch
import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore
import KolorsTerminal
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Command-line options of `kolors studio`.
public struct StudioOptions: Sendable {
    public var model: String?
    /// Session folder; nil = a new one under the user's data folder.
    public var session: String?
    public var preview: PreviewMode
    public var theme: String?
    public var threads: Int?
    /// `--ip-adapter`, `--image-encoder`, `--lora`, `--lora-dir` (paths absolute).
    public var adapters: AdapterOptions
    public var environment: [String: String]
    /// Path of the running binary (to find themes next to it).
    public var executable: String

    public init(model: String? = nil, session: String? = nil, preview: PreviewMode = .auto, theme: String? = nil,
                threads: Int? = nil, adapters: AdapterOptions = AdapterOptions(),
                environment: [String: String] = ProcessInfo.processInfo.environment,
                executable: String = CommandLine.arguments.first ?? "kolors") {
        self.model = model
        self.session = session
        self.preview = preview
        self.theme = theme
        self.threads = threads
        self.adapters = adapters
        self.environment = environment
        self.executable = executable
    }
}

/// Set by SIGINT/SIGTERM/SIGHUP handlers; the UI loop exits cleanly when it sees it.
private let stopSignal = Atomic<Int32>(0)
/// Set by SIGTSTP (`kill -TSTP`, a job-control stop): the UI loop suspends like Ctrl-Z.
private let suspendSignal = Atomic<Bool>(false)

/// Runs the studio until the user quits. Returns the process exit status. The terminal is
/// restored on every path out (quit, Ctrl-C, SIGTERM/SIGHUP, thrown errors; crashes via a
/// signal handler).
public func runStudio(options: StudioOptions, makeGenerator: @escaping GeneratorFactory) throws -> Int32 {
    let env = options.environment
    // Everything that can fail with a plain message happens before ncurses starts.
    let term = env["TERM"]
    if let problem = CursesScreen.probe(term: term) { throw TerminalError(problem) }
    guard isatty(0) == 1, isatty(1) == 1 else { throw TerminalError("kolors studio needs a terminal on stdin and stdout") }

    let themes = ThemeLibrary.standard(executable: options.executable, environment: env)
    let theme = try themes.load(options.theme ?? "dark")
    // a relative --session is the caller's folder's, made absolute once (messages and the session picker need it whole)
    let sessionPath = options.session.map { resolveStudioPath($0, cwd: FileManager.default.currentDirectoryPath) }
        ?? (GallerySession.defaultRoot(environment: env) as NSString).appendingPathComponent(GallerySession.sessionName())

    kc_unblock_signals()
    // Signals: handled on a queue, acted on by the UI loop (installed before the terminal is touched).
    let signalQueue = DispatchQueue(label: "kolors.studio.signals")
    var signalSources: [DispatchSourceSignal] = []
    for sig in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] {
        signal(sig, SIG_IGN)
        let src = DispatchSource.makeSignalSource(signal: sig, queue: signalQueue)
        src.setEventHandler { stopSignal.store(sig, ordering: .relaxed) }
        src.resume()
        signalSources.append(src)
    }
    signal(SIGPIPE, SIG_IGN)
    // a stop from outside restores the terminal first, like Ctrl-Z
    signal(SIGTSTP, SIG_IGN)
    let tstp = DispatchSource.makeSignalSource(signal: SIGTSTP, queue: signalQueue)
    tstp.setEventHandler { suspendSignal.store(true, ordering: .relaxed) }
    tstp.resume()
    signalSources.append(tstp)
    defer {
        for s in signalSources { s.cancel() }
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP] { signal(sig, SIG_DFL) }
    }


    // Preview protocol: flag, then KOLORS_PREVIEW, then detection (environment, XTVERSION, kitty query, DA1).
    let envMode = env["KOLORS_PREVIEW"].flatMap { PreviewMode(rawValue: $0.lowercased()) }
    let explicit = options.preview != .auto ? options.preview : (envMode ?? .auto)
    // forced graphics still probe: the cell size and (in tmux) the outer terminal are needed
    let needProbe = explicit == .auto || explicit.isGraphics
    let caps = needProbe ? TerminalProbe.query(environment: env) : TerminalCapabilities()
    let choice = TerminalProbe.choose(flag: options.preview, environment: env, caps: caps)
    let mode = choice.mode
    let log = DebugLog(path: env["KOLORS_STUDIO_LOG"])
    log.write("terminal TERM=\(term ?? "") tmux=\(caps.tmux) da1=\(caps.da1.map { "\($0)" } ?? "none") sixel=\(caps.sixel) "
              + "xtversion=\(caps.xtversion ?? "none") kitty-query=\(caps.kittyGraphics) "
              + "cell=\(caps.cellWidth ?? 0)x\(caps.cellHeight ?? 0) probe=\(caps.probeMilliseconds) ms"
              + (caps.tmuxInfo.map { " tmux=\($0.version) outer=\($0.clientTermName)/\($0.clientTermType) passthrough=\($0.passthrough)" } ?? ""))
    log.write("preview mode=\(mode.rawValue) label=\(choice.label) (flag \(options.preview.rawValue), KOLORS_PREVIEW=\(env["KOLORS_PREVIEW"] ?? "unset")): \(choice.reason)")

    kc_install_crash_restore(1)
    defer { kc_remove_crash_restore() }
    // Half blocks in true colour: opt in with KOLORS_TRUECOLOR=1 (ncurses then drives the terminal as
    // xterm-direct, whose colon-separated RGB colours most modern terminals and tmux understand).
    var cursesTerm = term
    if env["KOLORS_TRUECOLOR"] == "1", CursesScreen.probe(term: "xterm-direct") == nil { cursesTerm = "xterm-direct" }
    log.write("ncurses terminal: \(cursesTerm ?? "")")
    let screen = try CursesScreen(term: cursesTerm)
    var app: StudioApp? = nil
    defer {
        app?.shutdownTerminal()
        screen.stop()
    }
    app = StudioApp(screen: screen, options: options, theme: theme, themes: themes, sessionPath: sessionPath, choice: choice,
                    caps: caps, factory: makeGenerator, log: log)
    let code = app!.run()
    let sig = stopSignal.load(ordering: .relaxed)
    log.write("exit code=\(code) signal=\(sig)")
    return sig != 0 ? 128 + sig : code
}

/// The UI thread's world: state, screen, services.
final class StudioApp {
    let screen: CursesScreen
    let options: StudioOptions
    var theme: Theme
    let themes: ThemeLibrary
    let mailbox = Mailbox()
    let service: GenerationService
    let images: ImageStore
    let painter: Painter
    /// Pixel images (kitty, iTerm2 or sixel); nil for half blocks and no previews.
    let graphics: ImagePresenter?
    let mode: PreviewMode
    let choice: GraphicsChoice
    let io = DispatchQueue(label: "kolors.studio.io", qos: .utility)
    /// Reading a session (journal, PNG metadata) can take long for big or odd sessions: apart from
    /// `io`, so loading parameters, previews and reference checks never wait behind it.
    let indexing = DispatchQueue(label: "kolors.studio.session-index", qos: .utility)
    /// LoRA checks and hashes (files can be 100+ MB): apart from `io`, so they never hold up loading or saving.
    let hashing = DispatchQueue(label: "kolors.studio.lora-hash", qos: .utility)
    var session: GallerySession
    var state: StudioState
    var decoder = InputDecoder()
    var running = true
    var dirty = true
    var clearNext = true
    var lastRepaintSerial = 0
    var lastOverlayKey = ""
    var countedTexts: (String, String)? = nil
    var lastTick = Date.distantPast
    let factory: GeneratorFactory
    let clock0 = Date()
    var extraKeys: [Int32: Key] = [:]

    let log: DebugLog

    init(screen: CursesScreen, options: StudioOptions, theme: Theme, themes: ThemeLibrary, sessionPath: String, choice: GraphicsChoice,
         caps: TerminalCapabilities, factory: @escaping GeneratorFactory, log: DebugLog) {
        self.log = log
        self.screen = screen
        self.options = options
        self.theme = theme
        self.themes = themes
        self.mode = choice.mode
        self.choice = choice
        self.factory = factory
        service = GenerationService(mailbox: mailbox)
        images = ImageStore(mailbox: mailbox)
        painter = Painter()
        let kind: ImagePresenter.Kind? = switch choice.mode {
        case .sixel: .sixel
        case .kitty: .kitty
        case .iterm: .iterm
        default: nil
        }
        if let kind {
            // sixel inside a tmux that draws sixel itself needs no passthrough
            let passthrough = choice.tmuxPassthrough && !(kind == .sixel && caps.sixel)
            graphics = ImagePresenter(kind: kind, outFD: 1, cellWidth: caps.cellWidth ?? 10, cellHeight: caps.cellHeight ?? 20,
                                      tmuxPassthrough: passthrough, placeholders: choice.kittyPlaceholders,
                                      budget: ImagePresenter.budget(environment: options.environment), log: log,
                                      onEncoded: { [mailbox] in mailbox.post(.imageReady) })
        } else {
            graphics = nil
        }
        session = GallerySession(directory: sessionPath)
        let seed = UInt64(UInt32(truncatingIfNeeded: getpid())) << 32 ^ UInt64(Date().timeIntervalSince1970 * 1000)
        state = StudioState(width: screen.columns, height: screen.lines, sessionPath: sessionPath, themeName: theme.name,
                            themeNames: themes.names(), previewMode: choice.label, randomSeed: seed)
        painter.apply(theme: theme)
        setupTerminal()
    }

    func setupTerminal() {
        _ = raw()                       // Ctrl-C/Q/S/O/V arrive as keys (no signals, no flow control)
        _ = set_escdelay(25)            // Esc is acknowledged at once
        wtimeout(kc_stdscr(), 20)       // get_wch waits at most 20 ms
        for (cap, key) in [("kLFT5", Key.ctrlLeft), ("kRIT5", .ctrlRight), ("kUP5", .ctrlUp), ("kDN5", .ctrlDown),
                           ("kHOM5", .ctrlHome), ("kEND5", .ctrlEnd), ("kDC5", .ctrlDelete)] {
            let code = cap.withCString { kc_key_code($0) }
            if code > 0 { extraKeys[code] = key }
        }
        writeRaw("\u{1B}[?2004h")       // bracketed paste
    }

    func shutdownTerminal() {
        graphics?.deleteAll()
        writeRaw("\u{1B}[?2004l")
    }

    func writeRaw(_ s: String) {
        _ = s.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }
    }

    // MARK: loop

    func run() -> Int32 {
        service.load(factory: factory, request: GeneratorRequest(model: options.model, threads: options.threads))
        dispatch(.configureAdapters(options.adapters))
        checkSession()
        indexStartupSession()
        // Test hook: crash on purpose after N seconds, to prove the crash handler restores the terminal.
        let crashAt = options.environment["KOLORS_STUDIO_TEST_CRASH_AFTER"].flatMap(Double.init).map { clock0.addingTimeInterval($0) }
        while running {
            if let crashAt, Date() >= crashAt { fatalError("KOLORS_STUDIO_TEST_CRASH_AFTER: deliberate crash for the terminal-restore test") }
            if stopSignal.load(ordering: .relaxed) != 0 { break }
            if suspendSignal.exchange(false, ordering: .relaxed) { suspend() }
            readInput()
            for e in mailbox.drain() { handle(e) }
            let now = Date()
            if now.timeIntervalSince(lastTick) >= 1 {
                lastTick = now
                dispatch(.tick(now: now.timeIntervalSince(clock0), rssBytes: Self.residentBytes()))
            }
            updateTokenCounts()
            if let graphics, graphics.isWriting {
                // an image is still going out: keep handling keys, repaint when it is done
                graphics.flush(timeout: 0.015)
                continue
            }
            if dirty || graphics?.pending == true { render() }
        }
        graphics?.finish()
        service.cancelAll()
        _ = service.drain(timeout: 1.0)
        return 0
    }

    func readInput() {
        var batch: [RawInput] = []
        var ch: wint_t = 0
        var first = true
        // while an image drains, poll input briefly instead of waiting the full 20 ms
        wtimeout(kc_stdscr(), graphics?.isWriting == true ? 2 : 20)
        while true {
            if !first { wtimeout(kc_stdscr(), 0) }
            let rc = wget_wch(kc_stdscr(), &ch)
            if !first { wtimeout(kc_stdscr(), decoder.isPasting ? 50 : 20) }
            first = false
            if rc == ERR { break }
            if rc == kc_key_code_yes() {
                let code = Int32(ch)
                if code == kc_key_resize() {
                    dispatch(.resize(width: Int(kc_cols()), height: Int(kc_lines())))
                    clearNext = true
                    continue
                }
                if let k = mapKey(code) { batch.append(.key(k)) }
            } else {
                batch.append(.scalar(UInt32(ch)))
            }
            if batch.count > 100_000 { break }
        }
        guard !batch.isEmpty else { return }
        for e in decoder.feed(batch) {
            switch e {
            case .key(let k): dispatch(.key(k))
            case .paste(let text): dispatch(.paste(text))
            }
        }
    }

    func mapKey(_ code: Int32) -> Key? {
        if let k = extraKeys[code] { return k }
        switch code {
        case KEY_UP: return .up
        case KEY_DOWN: return .down
        case KEY_LEFT: return .left
        case KEY_RIGHT: return .right
        case KEY_HOME: return .home
        case KEY_END: return .end
        case KEY_PPAGE: return .pageUp
        case KEY_NPAGE: return .pageDown
        case KEY_DC: return .delete
        case KEY_IC: return .insert
        case KEY_BACKSPACE: return .backspace
        case KEY_ENTER: return .enter
        case kc_key_btab(): return .backTab
        default:
            for n in 1...12 where code == kc_key_f(Int32(n)) { return .function(n) }
            return nil
        }
    }

    func dispatch(_ action: Action) {
        if log.enabled { log.write(Self.describe(action)) }
        // Ctrl-G: the session folder is checked again first, so a folder that went away or became
        // read-only refuses the job before any work
        if case .key(.ctrl("g")) = action, state.linePrompt == nil, state.confirmingQuit == nil { checkSession() }
        let effects = reduce(&state, action)
        dirty = true
        for e in effects { perform(e) }
    }

    func handle(_ e: ShellEvent) {
        switch e {
        case .action(let a): dispatch(a)
        case .sessionOpened(let s, let report):
            session = s
            let entries = s.entries
            dispatch(.galleryLoaded(sessionPath: s.directory, entries: entries, notes: report.notes))
            checkSession()
            // reopening a session restores its history: the gallery, the last image in the
            // preview and (at startup) the last parameters in the editor
            if let last = entries.last {
                if restoreOnOpen {
                    dispatch(.sessionRestored(ParsedImageMetadata(parameters: last.parameters, source: last.foreign ? .a1111 : .kolors,
                                                                  batchIndex: last.batchIndex), from: last.file))
                }
                perform(.loadPreview(path: s.path(of: last.file), caption: last.file))
            }
        case .imageReady:
            dirty = true
        }
    }

    var restoreOnOpen = true

    /// Tells the state whether the session folder can take images (a few syscalls; nothing is created).
    func checkSession() {
        let path = session.directory
        dispatch(.sessionChecked(path: path, problem: GallerySession.writeProblem(directory: path)))
    }

    /// Reads the start-up session in the background into the session object jobs save into, so a
    /// job finishing before the index is done is kept (and never replaces a file).
    func indexStartupSession() {
        restoreOnOpen = true
        let mailbox = self.mailbox
        let s = session
        indexing.async {
            do {
                let report = try s.index()
                mailbox.post(.sessionOpened(s, report))
            } catch {
                mailbox.post(.failure("cannot read session \(s.directory): \(error)"))
            }
        }
    }

    func openSession(_ path: String, restore: Bool) {
        restoreOnOpen = restore
        let mailbox = self.mailbox
        indexing.async {
            do {
                let (s, report) = try GallerySession.open(directory: path)
                mailbox.post(.sessionOpened(s, report))
            } catch {
                mailbox.post(.failure("cannot open session \(path): \(error)"))
            }
        }
    }

    func perform(_ effect: Effect) {
        let mailbox = self.mailbox
        switch effect {
        case .startJob(let job):
            // checked again when it starts: a queued job must not run into a folder that cannot take it
            if let problem = GallerySession.writeProblem(directory: session.directory) {
                dispatch(.sessionChecked(path: session.directory, problem: problem))
                dispatch(.jobFailed(jobID: job.id, message: "not started: images cannot be saved: \(problem)"))
            } else {
                service.start(job, session: session)
            }
        case .cancelJob(let id): service.cancel(id)
        case .quit: running = false
        case .setFavourite(let file, let value):
            let s = session
            io.async {
                do { try s.setFavourite(file: file, value) } catch { mailbox.post(.failure("favourite: \(error)")) }
            }
        case .deleteImage(let file):
            let s = session
            images.forget(s.path(of: file))
            io.async {
                do { try s.delete(file: file) } catch { mailbox.post(.failure("delete: \(error)")) }
                mailbox.post(.galleryEntriesChanged(s.entries))
            }
        case .loadParameters(let path):
            io.async {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                    mailbox.post(.parametersLoadFailed(path: path, message: "no such file"))
                    return
                }
                guard !isDir.boolValue else {
                    mailbox.post(.parametersLoadFailed(path: path, message: "that is a folder; Tab lists what it holds"))
                    return
                }
                do {
                    let (image, texts) = try PNGFile.read(path)
                    guard let parsed = ImageMetadata.parse(texts) else {
                        mailbox.post(.parametersLoadFailed(path: path, message: "this PNG carries no generation parameters (no 'kolors' or 'parameters' text)"))
                        return
                    }
                    mailbox.post(.parametersLoaded(parsed, from: path))
                    mailbox.post(.previewLoaded(image, caption: (path as NSString).lastPathComponent))
                } catch {
                    // the dialog shows the path already: the reason alone
                    let why = "\(error)".replacingOccurrences(of: path + ": ", with: "").replacingOccurrences(of: path, with: "the file")
                    mailbox.post(.parametersLoadFailed(path: path, message: why))
                }
            }
        case .listSessions:
            let root = (session.directory as NSString).deletingLastPathComponent
            let open = session.directory
            io.async { mailbox.post(.sessionsListed(GallerySession.listSessions(root: root, include: open))) }
        case .checkSession:
            checkSession()
        case .saveUnsaved(let folder):
            let kept = state.unsaved
            io.async {
                if let problem = GallerySession.writeProblem(directory: folder) {
                    mailbox.post(.unsavedSaveFailed(folder: folder, message: problem))
                    return
                }
                let target = GallerySession(directory: folder)
                do {
                    _ = try target.index()
                    var files: [String] = []
                    for u in kept { files.append(try target.add(image: u.image, record: u.record).file) }
                    mailbox.post(.unsavedSaved(folder: folder, files: files))
                } catch {
                    mailbox.post(.unsavedSaveFailed(folder: folder, message: "\(error)"))
                }
            }
        case .completePath(let text):
            let result = PathCompletion.complete(text, cwd: state.workingDirectory)
            dispatch(.pathCompleted(for: text, text: result.text, candidates: result.candidates))
        case .suspend:
            suspend()
        case .openSession(let path):
            openSession(path, restore: false)
        case .applyTheme(let name):
            do {
                theme = try themes.load(name)
                painter.apply(theme: theme)
                clearNext = true
                dispatch(.themeApplied(name))
            } catch {
                dispatch(.failure("\(error)"))
            }
        case .checkReference(let path):
            images.forget(path)           // a file fixed since it was last read is read again
            io.async { mailbox.post(.referenceChecked(path: path, ReferenceImage.check(path: path))) }
        case .inspectLoRA(let id, let path, let dirs):
            hashing.async {
                kc_nice_this_thread(5)
                defer { kc_nice_this_thread(-5) }
                mailbox.post(.loraInspected(id: id, LoRALibrary.inspect(path: path, searchDirs: dirs)))
            }
        case .loadPreview(let path, let caption):
            io.async {
                if let img = try? PNGFile.read(path).image { mailbox.post(.previewLoaded(img, caption: caption)) }
            }
        case .redraw:
            clearNext = true
        }
    }

    /// Ctrl-Z or SIGTSTP: give the terminal back as it was (ncurses off, bracketed paste off, the
    /// normal screen), stop; on `fg` (SIGCONT) take it again and repaint everything.
    func suspend() {
        log.write("suspend")
        graphics?.finish()
        graphics?.deleteAll()
        writeRaw("\u{1B}[?2004l")
        _ = endwin()
        kc_remove_crash_restore()
        kc_stop_self()
        // resumed
        kc_install_crash_restore(1)
        setupTerminal()
        _ = wrefresh(kc_stdscr())
        var rows: Int32 = 0, cols: Int32 = 0, xp: Int32 = 0, yp: Int32 = 0
        if kc_winsize(1, &rows, &cols, &xp, &yp) == 0, rows > 0, cols > 0, Int(rows) != state.height || Int(cols) != state.width {
            _ = resizeterm(rows, cols)
            dispatch(.resize(width: Int(cols), height: Int(rows)))
        }
        clearNext = true
        dirty = true
        log.write("resumed")
    }

    func updateTokenCounts() {
        let texts = (state.prompt.text, state.negative.text)
        if let c = countedTexts, c == texts { return }
        guard let g = service.current else { return }
        countedTexts = texts
        dispatch(.tokenCounts(prompt: g.countTokens(texts.0), negative: g.countTokens(texts.1)))
    }

    // MARK: drawing

    func render() {
        dirty = false
        let frame = StudioView.render(state)
        if state.repaintSerial != lastRepaintSerial {
            lastRepaintSerial = state.repaintSerial
            clearNext = true
        }
        painter.draw(frame)
        var placements: [(ImagePlacement, RGBImage?)] = []
        for p in frame.images {
            switch p.source {
            case .frame(let f): placements.append((p, f.image))
            case .file(let path):
                let img = images.image(path)
                placements.append((p, img))
                if img == nil { drawNote(images.hasFailed(path) ? "unreadable" : "loading…", in: p.rect) }
            }
        }
        if mode == .blocks {
            for (p, img) in placements {
                if let img, !painter.drawBlocks(img, in: p.rect, key: p.cacheKey) {
                    drawNote("previews need colours (or sixel)", in: p.rect)
                }
            }
        }
        if let graphics {
            if graphics.needsClear(for: placements) { clearNext = true }
            for c in graphics.placeholderCells(for: placements) { painter.drawPlaceholder(c.scalars, x: c.x, y: c.y, id: c.id) }
        }
        if clearNext {
            clearNext = false
            _ = clearok(kc_curscr(), true)
            graphics?.forget()
        }
        if let c = frame.cursor {
            _ = curs_set(1)
            _ = wmove(kc_stdscr(), Int32(c.y), Int32(c.x))
        } else {
            _ = curs_set(0)
        }
        _ = wrefresh(kc_stdscr())
        graphics?.present(placements)
    }

    func drawNote(_ text: String, in r: Rect) {
        let y = r.y + r.height / 2
        let x = r.x + max(0, (r.width - CellWidth.of(text)) / 2)
        guard y < state.height else { return }
        var wbuf = text.unicodeScalars.map { wchar_t(bitPattern: $0.value) } + [0]
        _ = kc_mvaddwstr_attr(kc_stdscr(), Int32(y), Int32(x), &wbuf, kc_a_dim(), 0)
    }

    static func describe(_ a: Action) -> String {
        switch a {
        case .key(let k): "key \(k)"
        case .paste(let t): "paste \(t.count) characters"
        case .generation(let id, let e):
            switch e {
            case .step(let i, let n, _, let p): "job \(id) step \(i)/\(n) preview=\(p.map { "\($0.width)x\($0.height)" } ?? "none")"
            default: "job \(id) \(e)"
            }
        case .jobSaved(let id, let entries, _): "job \(id) saved \(entries.map(\.file))"
        case .previewLoaded(let img, let caption): "preview \(caption) \(img.width)x\(img.height)"
        case .galleryLoaded(let path, let entries, let notes): "session \(path) \(entries.count) images \(notes)"
        case .tick: "tick"
        default: "\(a)"
        }
    }

    static func residentBytes() -> UInt64? {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let parts = s.split(separator: " ")
        guard parts.count > 1, let pages = UInt64(parts[1]) else { return nil }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }
}
