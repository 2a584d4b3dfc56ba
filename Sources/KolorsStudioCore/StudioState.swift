import Foundation
import KolorsImageIO
import KolorsPipelines

/// Where a job is.
public enum JobPhase: Equatable, Sendable {
    case queued
    /// Handed to the background queue, no event yet.
    case starting
    case loading(String, fraction: Double?)
    case running
    case decoding
    case saving
    /// Esc was pressed; the generator has been told to stop.
    case cancelling
    case finished
    case cancelled
    case failed(String)
    /// Made, but the session could not store it: the images are kept in memory (`StudioState.unsaved`).
    case unsaved(String)

    /// Holds the generator (only one such job at a time).
    public var isActive: Bool {
        switch self {
        case .starting, .loading, .running, .decoding, .saving, .cancelling: true
        default: false
        }
    }
    public var isDone: Bool {
        switch self {
        case .finished, .cancelled, .failed, .unsaved: true
        default: false
        }
    }
}

public struct Job: Equatable, Sendable {
    public var id: Int
    public var parameters: GenerationParameters
    public var phase: JobPhase = .queued
    public var step = 0
    public var totalSteps = 0
    public var secondsPerStep: Double?
    /// Files written (gallery entry names) when finished.
    public var files: [String] = []
    public init(id: Int, parameters: GenerationParameters) {
        self.id = id
        self.parameters = parameters
        self.totalSteps = parameters.steps
    }

    /// Estimated seconds left for the denoising steps.
    public var eta: Double? {
        guard let s = secondsPerStep, totalSteps > 0 else { return nil }
        return Double(max(0, totalSteps - step)) * s
    }
}

/// The generator as far as the studio knows.
public enum GeneratorStatus: Equatable, Sendable {
    case loading(String, fraction: Double?)
    case ready(description: String, isDemo: Bool)
    case failed(String)
}

/// The image in the preview pane.
public struct PreviewFrame: Equatable, Sendable {
    public var image: RGBImage
    public var caption: String
    /// Increases with every new image (renderers cache by it).
    public var serial: Int
    /// A per-step preview of a running job (drawn with a lighter encoding) rather than a finished image.
    public var live: Bool
    public init(image: RGBImage, caption: String, serial: Int, live: Bool = false) {
        self.image = image
        self.caption = caption
        self.serial = serial
        self.live = live
    }
}

public struct StatusMessage: Equatable, Sendable {
    public enum Kind: Equatable, Sendable { case info, success, warning, error }
    public var text: String
    public var kind: Kind
    /// Time (the clock of `.tick`) after which the message is cleared; nil = until replaced.
    public var expires: Double?
    /// When it was posted (the clock of `.tick`).
    public var posted: Double
    public init(text: String, kind: Kind, expires: Double?, posted: Double = 0) {
        self.text = text
        self.kind = kind
        self.expires = expires
        self.posted = posted
    }
}

/// A finished image the session folder could not take: kept in memory until saved elsewhere.
public struct UnsavedImage: Equatable, Sendable {
    public var jobID: Int
    public var image: RGBImage
    public var record: ImageRecord
    public init(jobID: Int, image: RGBImage, record: ImageRecord) {
        self.jobID = jobID
        self.image = image
        self.record = record
    }
}

/// What quitting would lose, asked before quitting (y quits).
public struct QuitConfirmation: Equatable, Sendable {
    public var running: Int?
    public var queued: Int
    public var unsaved: Int
    public init(running: Int?, queued: Int, unsaved: Int) {
        self.running = running
        self.queued = queued
        self.unsaved = unsaved
    }
}

/// The gallery overlay's state. Entries mirror the open `GallerySession`.
public struct GalleryState: Equatable, Sendable {
    public var sessionPath: String
    public var entries: [GalleryEntry] = []
    public var selected = 0
    public var fullView = false
    public var confirmingDelete = false
    public var pickingSession = false
    public var sessions: [SessionInfo] = []
    public var sessionSelected = 0
    /// The session is being read (journal replayed, PNGs indexed) in the background.
    public var indexing = true
    /// Why images cannot be saved into this session (nil: they can), from the last check.
    public var problem: String?
    public init(sessionPath: String) { self.sessionPath = sessionPath }

    public var selectedEntry: GalleryEntry? { entries.indices.contains(selected) ? entries[selected] : nil }
}

/// A one-line text prompt shown over the screen (e.g. "Load parameters from PNG").
public struct LinePrompt: Equatable, Sendable {
    public enum Purpose: Equatable, Sendable { case loadParameters, addLoRA, saveUnsaved }
    public var purpose: Purpose
    public var title: String
    public var editor: TextEditor
    /// Why the last Enter did not work (the dialog stays open), or the completions Tab found.
    public var note: (text: String, isError: Bool)?
    /// Enter was pressed; waiting for the background work to answer.
    public var busy = false
    public init(purpose: Purpose, title: String, editor: TextEditor = TextEditor(singleLine: true)) {
        self.purpose = purpose
        self.title = title
        self.editor = editor
    }
    public static func == (a: LinePrompt, b: LinePrompt) -> Bool {
        a.purpose == b.purpose && a.title == b.title && a.editor == b.editor && a.note?.text == b.note?.text
            && a.note?.isError == b.note?.isError && a.busy == b.busy
    }
}

/// Everything the studio shows. Changed only by `reduce`.
public struct StudioState: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var focus: Field = .prompt
    public var prompt = TextEditor()
    public var negative = TextEditor()
    public var initImage = TextEditor(singleLine: true)
    /// The value fields (prompt/negative/initImage are copied in from the editors when a job is made).
    public var params = GenerationParameters()
    public var seedLocked = false
    /// Digits typed into the focused value field, not yet applied.
    public var fieldInput: String?
    public var helpVisible = false
    public var helpScroll = 0
    /// The preview (or the last image) over the whole screen (Ctrl-F), at any terminal size.
    public var fullPreview = false
    /// Every message posted, oldest first (the message log, Ctrl-N).
    public var messageLog: [StatusMessage] = []
    public var logVisible = false
    /// Rows scrolled up from the end of the log.
    public var logScroll = 0
    /// Quit was asked while work would be lost; y quits.
    public var confirmingQuit: QuitConfirmation?
    /// Finished images the session could not store (Ctrl-S saves them elsewhere).
    public var unsaved: [UnsavedImage] = []
    /// The size was set by the user or by reloaded parameters (the demo checkpoint's small default then stays off).
    public var sizeChosen = false
    /// The user has typed, pasted, changed a field or loaded parameters: a start-up session restore
    /// that arrives later (a slow index) leaves the fields alone.
    public var fieldsTouched = false
    public var galleryVisible = false
    public var gallery: GalleryState
    public var linePrompt: LinePrompt?
    public var jobs: [Job] = []
    public var nextJobID = 1
    public var generator: GeneratorStatus = .loading("starting the engine", fraction: nil)
    public var preview: PreviewFrame?
    public var previewSerial = 0
    public var message: StatusMessage?
    public var promptTokens: Int?
    public var negativeTokens: Int?
    public var rssBytes: UInt64?
    public var now: Double = 0
    public var themeName: String
    public var themeNames: [String]
    /// "sixel", "blocks" or "none": what the preview pane uses (shown in the status line).
    public var previewMode: String
    public var seeds: SeedGenerator
    /// The session's IP-Adapter; nil = off (the reference image field says how to turn it on).
    public var ipAdapter: IPAdapterConfig?
    /// The reference image path (IP-Adapter).
    public var ipImage = TextEditor(singleLine: true)
    /// What the last check of the reference image found.
    public var ipImageStatus: ReferenceStatus = .none
    public var ipScale: Float = ParameterRules.defaultIPScale
    /// The LoRA list, applied in order.
    public var loras: [LoRAEntry] = []
    /// The selected entry of the LoRA list.
    public var loraSelected = 0
    public var nextLoRAID = 1
    /// `--lora-dir` folders.
    public var loraDirs: [String] = []
    /// Folders of the LoRAs used in this session (searched, with `loraDirs`, for LoRAs named in reloaded parameters).
    public var loraFolders: [String] = []
    /// The LoRAs came from `--lora`: restoring a session's last image keeps them.
    public var lorasFromFlags = false
    /// Relative paths typed into the studio are resolved against it.
    public var workingDirectory = "/"
    public var quitting = false
    /// Incremented when the screen must be repainted from scratch (Ctrl-L, theme change).
    public var repaintSerial = 0

    public init(width: Int, height: Int, sessionPath: String, themeName: String = "dark", themeNames: [String] = ["dark"],
                previewMode: String = "blocks", randomSeed: UInt64 = 0x5EED) {
        self.width = width
        self.height = height
        self.gallery = GalleryState(sessionPath: sessionPath)
        self.themeName = themeName
        self.themeNames = themeNames
        self.previewMode = previewMode
        self.seeds = SeedGenerator(state: randomSeed)
        self.params.seed = seeds.nextSeed()
    }

    public var layout: StudioLayout {
        StudioLayout.compute(width: width, height: height, banner: bannerText != nil, extraParamRows: ParamsPane.extraRows(self),
                             compactExtraParamRows: ParamsPane.extraRows(self, compact: true), negativeFocused: focus == .negative)
    }

    /// The job holding the generator, if any.
    public var activeJob: Job? { jobs.first { $0.phase.isActive } }
    public var queuedJobs: [Job] { jobs.filter { $0.phase == .queued } }

    /// The notice under the title bar, when one is due.
    public var bannerText: (String, StatusMessage.Kind)? {
        if case .failed = generator {} else if let problem = gallery.problem {
            // more pressing than the demo notice: nothing made now could be kept here
            return ("Images cannot be saved in this session: \(problem) — Ctrl-G is refused; start with --session DIR "
                    + "elsewhere, or Ctrl-O, o opens another session", .error)
        }
        switch generator {
        case .ready(_, let isDemo) where isDemo:
            return ("DEMO: random-weight demo checkpoint — images are noise, not Kolors. Real Kolors: kolors studio --model DIR "
                    + "(diffusers folder, HF cache folder or Kwai-Kolors/Kolors-diffusers)", .warning)
        case .failed(let why):
            return ("No image engine: \(why) — editing and the gallery still work", .error)
        default:
            return nil
        }
    }

    /// Whether the screen shows the compact arrangement (folded negative prompt and parameters).
    public var isCompact: Bool { layout.compact }

    /// The parameters a job would get now (editors and fields combined, typed input applied).
    public var currentParameters: GenerationParameters {
        var p = params
        p.prompt = prompt.text
        p.negativePrompt = negative.text
        let path = initImage.text.trimmingCharacters(in: .whitespaces)
        p.initImage = path.isEmpty ? nil : path
        let reference = ipImagePath
        if let a = ipAdapter, !reference.isEmpty, ipScale > 0 {
            p.ipAdapter = .init(path: a.path, image: reference, scale: ipScale, imageEncoder: a.imageEncoder)
        } else {
            p.ipAdapter = nil
        }
        p.loras = loras.filter(\.isUsable).map(\.settings)
        return p
    }

    /// The reference image field as an absolute path ("" when empty).
    public var ipImagePath: String { resolveStudioPath(ipImage.text, cwd: workingDirectory) }

    /// The LoRA entries jobs leave out (not found, unusable).
    public var unusableLoRAs: [LoRAEntry] { loras.filter { !$0.isUsable } }

    /// Folders searched for LoRAs named in reloaded parameters: those of the list, of LoRAs used
    /// earlier in the session, then `--lora-dir`.
    public var loraSearchDirs: [String] {
        var out: [String] = []
        let listed = loras.filter { $0.settings.path.contains("/") }.map { ($0.settings.path as NSString).deletingLastPathComponent }
        for d in listed + loraFolders + loraDirs where !d.isEmpty && !out.contains(d) { out.append(d) }
        return out
    }
}

/// Everything that can happen to the studio.
public enum Action: Sendable {
    case key(Key)
    case paste(String)
    case resize(width: Int, height: Int)
    /// Clock (seconds, any origin) and resident memory, about once a second.
    case tick(now: Double, rssBytes: UInt64?)
    case generatorStatus(GeneratorStatus)
    case generation(jobID: Int, GenerationEvent)
    /// The job's images were saved into the session; `final` is the first one, for the preview.
    case jobSaved(jobID: Int, entries: [GalleryEntry], final: RGBImage?)
    case jobCancelled(jobID: Int)
    case jobFailed(jobID: Int, message: String)
    /// The job made its images but the session could not store them (`saved` are the ones it did store).
    case jobSaveFailed(jobID: Int, saved: [GalleryEntry], unsaved: [UnsavedImage], message: String)
    /// Kept images were written elsewhere (`.saveUnsaved`): the files, or why not.
    case unsavedSaved(folder: String, files: [String])
    case unsavedSaveFailed(folder: String, message: String)
    /// Ctrl-P could not load the PNG (the dialog stays open with the reason).
    case parametersLoadFailed(path: String, message: String)
    /// Tab in a path dialog: the completed text and the candidates when several match.
    case pathCompleted(for: String, text: String, candidates: [String])
    case tokenCounts(prompt: Int?, negative: Int?)
    case galleryLoaded(sessionPath: String, entries: [GalleryEntry], notes: [String])
    /// The result of checking that the session folder can take images (nil: it can).
    case sessionChecked(path: String, problem: String?)
    case galleryEntriesChanged([GalleryEntry])
    case sessionsListed([SessionInfo])
    /// Parameters read from a PNG (Ctrl-P or gallery `r`).
    case parametersLoaded(ParsedImageMetadata, from: String)
    /// The session's last image at startup (like `parametersLoaded`, but LoRAs given with `--lora` stay).
    case sessionRestored(ParsedImageMetadata, from: String)
    case previewLoaded(RGBImage, caption: String)
    /// Command-line adapter settings, once at startup.
    case configureAdapters(AdapterOptions)
    /// The result of `.checkReference`.
    case referenceChecked(path: String, ReferenceCheck)
    /// The result of `.inspectLoRA`.
    case loraInspected(id: Int, LoRAInspection)
    case themeApplied(String)
    case themesFound([String])
    case failure(String)
}

/// What the shell must do for the reducer (I/O, threads, terminal).
public enum Effect: Equatable, Sendable {
    case startJob(Job)
    case cancelJob(Int)
    case quit
    case setFavourite(file: String, Bool)
    case deleteImage(file: String)
    /// Read parameters from a PNG (reload into the editor).
    case loadParameters(path: String)
    case listSessions
    case openSession(path: String)
    /// Check that the session folder can take images (answered with `.sessionChecked`).
    case checkSession
    /// Write the kept unsaved images into `folder` (created when missing).
    case saveUnsaved(folder: String)
    /// Complete the path typed in a dialog (answered with `.pathCompleted`).
    case completePath(String)
    /// Stop the process (Ctrl-Z): restore the terminal first, redraw on resume.
    case suspend
    case applyTheme(String)
    /// Read the reference image far enough to tell whether it is a usable PNG.
    case checkReference(path: String)
    /// Find (by path, else by name in `searchDirs`), check and hash a LoRA in the background.
    case inspectLoRA(id: Int, path: String, searchDirs: [String])
    /// Read a PNG into the preview pane.
    case loadPreview(path: String, caption: String)
    /// Repaint the whole screen (and re-emit images).
    case redraw
}
