import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsPipelines

/// The session's IP-Adapter (from `--ip-adapter` / `--image-encoder`, or adopted from a reloaded record).
public struct IPAdapterConfig: Equatable, Sendable {
    /// The weights file or the folder holding `ip_adapter_plus_general.safetensors`.
    public var path: String
    /// The CLIP image encoder folder; nil = `image_encoder/` beside the weights.
    public var imageEncoder: String?
    public init(path: String, imageEncoder: String? = nil) {
        self.path = path
        self.imageEncoder = imageEncoder
    }
}

/// What the studio knows about the reference image in the IP-Adapter field.
public enum ReferenceStatus: Equatable, Sendable {
    /// No reference image.
    case none
    /// The path is being read (`.checkReference`).
    case checking(String)
    /// A readable PNG.
    case ok(String, width: Int, height: Int)
    /// The path cannot be used: missing, unreadable or not a PNG.
    case failed(String, String)

    public var path: String? {
        switch self {
        case .none: nil
        case .checking(let p), .ok(let p, _, _), .failed(let p, _): p
        }
    }
}

/// The result of reading a reference image (`ReferenceImage.check`).
public enum ReferenceCheck: Equatable, Sendable {
    case ok(width: Int, height: Int)
    case failed(String)
}

/// One entry of the LoRA list.
public struct LoRAEntry: Equatable, Sendable {
    public enum Status: Equatable, Sendable {
        /// The file is being found, checked and hashed (`.inspectLoRA`).
        case checking
        /// A readable safetensors file; `settings.hash` holds its A1111 short hash.
        case ready
        /// Loaded from an image's parameters but no file of that name was found.
        case missing
        /// The file exists but cannot be used (not safetensors, unreadable).
        case failed(String)
    }
    /// Where the entry came from: typed into the add prompt (dropped when it cannot be used) or
    /// loaded from flags / an image's parameters (kept, marked, when its file is missing).
    public enum Origin: Equatable, Sendable { case added, loaded }

    /// Stable identity (results of background work find their entry by it).
    public var id: Int
    /// Path (or, before it is resolved, the name from `<lora:name:weight>`), weight and hash.
    public var settings: GenerationParameters.LoRASettings
    public var status: Status
    public var origin: Origin
    /// The hash the loaded image recorded for it (compared with the file's).
    public var recordedHash: String?

    public init(id: Int, settings: GenerationParameters.LoRASettings, status: Status = .checking, origin: Origin = .added,
                recordedHash: String? = nil) {
        self.id = id
        self.settings = settings
        self.status = status
        self.origin = origin
        self.recordedHash = recordedHash
    }

    public var name: String { settings.name }
    /// Whether jobs get this LoRA: its file is known (ready, or still being hashed after a typed or recorded path).
    public var isUsable: Bool {
        switch status {
        case .ready: true
        case .checking: settings.path.contains("/")
        case .missing, .failed: false
        }
    }
}

/// What the background check of a LoRA found (`LoRALibrary.inspect`).
public enum LoRAInspection: Equatable, Sendable {
    /// The file (possibly found by name in a LoRA folder) and its A1111 short hash.
    case found(path: String, hash: String)
    /// No such file, and no `<name>.safetensors` in the folders searched.
    case notFound(searched: [String])
    /// The file exists but is not a usable safetensors file.
    case failed(String)
}

/// Startup settings from the command line (`--ip-adapter`, `--image-encoder`, `--lora`, `--lora-dir`).
public struct AdapterOptions: Equatable, Sendable {
    public var ipAdapter: IPAdapterConfig?
    /// Preloaded LoRAs (absolute paths and weights).
    public var loras: [GenerationParameters.LoRASettings]
    /// Folders searched for LoRAs named in reloaded parameters.
    public var loraDirs: [String]
    /// The folder relative paths typed into the studio are resolved against.
    public var workingDirectory: String
    public init(ipAdapter: IPAdapterConfig? = nil, loras: [GenerationParameters.LoRASettings] = [], loraDirs: [String] = [],
                workingDirectory: String = FileManager.default.currentDirectoryPath) {
        self.ipAdapter = ipAdapter
        self.loras = loras
        self.loraDirs = loraDirs
        self.workingDirectory = workingDirectory
    }
}

// MARK: - file checks (run by the shell on background queues)

/// Reads a reference image far enough to say whether it can be used.
public enum ReferenceImage {
    public static func check(path: String) -> ReferenceCheck {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { return .failed("no such file") }
        if isDir.boolValue { return .failed("is a folder, not a PNG") }
        guard let handle = FileHandle(forReadingAtPath: path) else { return .failed("cannot read it (permissions?)") }
        let head = handle.readData(ofLength: 8)
        try? handle.close()
        guard head.elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] as [UInt8]) else {
            return .failed("not a PNG file")
        }
        do {
            let image = try PNGFile.read(path).image
            return .ok(width: image.width, height: image.height)
        } catch {
            return .failed("unreadable PNG: \(error)")
        }
    }
}

/// Finds, checks and hashes LoRA files. Hashes are cached by path, size and modification time,
/// so a 100+ MB LoRA is read once per session.
public enum LoRALibrary {
    private final class Cache: @unchecked Sendable {
        let lock = NSLock()
        var hashes: [String: String] = [:]
    }
    private static let cache = Cache()

    /// A1111's short hash (SHA-256 of the tensor data, 12 hex digits); cached.
    public static func shortHash(path: String) throws -> String {
        let attrs = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attrs?[.size] as? NSNumber)?.int64Value ?? -1
        let mtime = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let key = "\(path)\u{0}\(size)\u{0}\(mtime)"
        if let h = cache.lock.withLock({ cache.hashes[key] }) { return h }
        let h = try SafetensorsFile.shortHash(path: path)
        cache.lock.withLock { cache.hashes[key] = h }
        return h
    }

    /// `<dir>/<name>.safetensors` in the first folder (or one of its subfolders, A1111 style) that has it.
    public static func find(name: String, in dirs: [String]) -> String? {
        let fm = FileManager.default
        let file = name.hasSuffix(".safetensors") ? name : name + ".safetensors"
        for dir in dirs {
            let direct = (dir as NSString).appendingPathComponent(file)
            if fm.fileExists(atPath: direct) { return direct }
        }
        for dir in dirs {
            guard let walker = fm.enumerator(atPath: dir) else { continue }
            var seen = 0
            while let rel = walker.nextObject() as? String {
                seen += 1
                if seen > 20_000 { break }
                if (rel as NSString).lastPathComponent == file {
                    return (dir as NSString).appendingPathComponent(rel)
                }
            }
        }
        return nil
    }

    /// Finds the file (`path` when it exists, else `<name>.safetensors` in `searchDirs`), checks it
    /// is a safetensors file and hashes it.
    public static func inspect(path: String, searchDirs: [String]) -> LoRAInspection {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        var file: String?
        if path.contains("/") || path.hasSuffix(".safetensors"), fm.fileExists(atPath: path, isDirectory: &isDir) {
            if isDir.boolValue { return .failed("is a folder, not a .safetensors file") }
            file = path
        } else {
            let name = GenerationParameters.LoRASettings(path: path).name
            file = find(name: name, in: searchDirs)
        }
        guard let file else { return .notFound(searched: searchDirs) }
        guard fm.isReadableFile(atPath: file) else { return .failed("cannot read \(file)") }
        do {
            return .found(path: file, hash: try shortHash(path: file))
        } catch {
            return .failed("not a safetensors LoRA (\(error))")
        }
    }
}

// MARK: - path completion (reads folders)

/// Tab in the studio's path dialogs, as a shell completes: the typed text extended by the longest
/// common prefix of the names in its folder that start with the typed name (a folder gets a `/`),
/// and those names when more than one fits. Relative paths are read against `cwd`; `~/` is kept.
public enum PathCompletion {
    /// Names shown at most (the dialog has one row for them).
    public static let maxCandidates = 40

    public static func complete(_ text: String, cwd: String) -> (text: String, candidates: [String]) {
        let typed = text.trimmingCharacters(in: .whitespaces)
        let slash = typed.lastIndex(of: "/")
        let folderPart = slash.map { String(typed[...$0]) } ?? ""
        let namePart = slash.map { String(typed[typed.index(after: $0)...]) } ?? typed
        let folder = folderPart.isEmpty ? cwd : resolveStudioPath(folderPart, cwd: cwd)
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: folder) else { return (text, []) }
        let showHidden = namePart.hasPrefix(".")
        let matches = names.filter { $0.hasPrefix(namePart) && (showHidden || !$0.hasPrefix(".")) }.sorted()
        guard !matches.isEmpty else { return (text, []) }
        func isDir(_ name: String) -> Bool {
            var d: ObjCBool = false
            return fm.fileExists(atPath: (folder as NSString).appendingPathComponent(name), isDirectory: &d) && d.boolValue
        }
        if matches.count == 1 {
            let name = matches[0]
            return (folderPart + name + (isDir(name) ? "/" : ""), [name])
        }
        var common = matches[0]
        for m in matches.dropFirst() {
            while !m.hasPrefix(common) { common.removeLast() }
        }
        let shown = matches.prefix(maxCandidates).map { $0 + (isDir($0) ? "/" : "") }
        return (folderPart + (common.count > namePart.count ? common : namePart), Array(shown))
    }
}

// MARK: - path helpers (pure)

/// `~/x` → home, relative → against `cwd`; "" stays "". Bare names (no `/`) stay bare when `keepBareNames`.
public func resolveStudioPath(_ text: String, cwd: String, keepBareNames: Bool = false) -> String {
    var p = text.trimmingCharacters(in: .whitespaces)
    if p.count >= 2, (p.first == "'" && p.last == "'") || (p.first == "\"" && p.last == "\"") {
        p = String(p.dropFirst().dropLast())       // pasted from a file manager, quoted
    }
    if p.isEmpty { return p }
    if p == "~" || p.hasPrefix("~/") { p = expandingTilde(p) }
    if p.hasPrefix("file://") { p = String(p.dropFirst("file://".count)) }
    if p.hasPrefix("/") { return normalizePath(p) }
    if keepBareNames && !p.contains("/") && !p.hasSuffix(".safetensors") { return p }
    return normalizePath(cwd + "/" + p)
}

/// Removes `.`, `..` and repeated slashes from an absolute path, without touching the file system.
func normalizePath(_ path: String) -> String {
    var parts: [Substring] = []
    for part in path.split(separator: "/", omittingEmptySubsequences: true) {
        if part == "." { continue }
        if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
        parts.append(part)
    }
    return "/" + parts.joined(separator: "/")
}

/// `/home/me/x` → `~/x` (for messages).
public func tildePath(_ path: String) -> String {
    let home = NSHomeDirectory()
    if home.count > 1, path == home || path.hasPrefix(home + "/") { return "~" + path.dropFirst(home.count) }
    return path
}

