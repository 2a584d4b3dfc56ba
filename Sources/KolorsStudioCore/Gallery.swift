import Foundation
import KolorsImageIO
import KolorsPipelines
#if canImport(Glibc)
import Glibc
#endif

/// One image of a gallery session.
public struct GalleryEntry: Codable, Equatable, Sendable {
    /// File name inside the session folder (the entry's identity).
    public var file: String
    public var parameters: GenerationParameters
    public var batchIndex: Int
    public var created: String?
    public var seconds: Double?
    public var favourite: Bool
    /// Where the parameters came from when the entry was recovered from a PNG alone.
    public var foreign: Bool

    public init(file: String, parameters: GenerationParameters, batchIndex: Int = 0, created: String? = nil,
                seconds: Double? = nil, favourite: Bool = false, foreign: Bool = false) {
        self.file = file
        self.parameters = parameters
        self.batchIndex = batchIndex
        self.created = created
        self.seconds = seconds
        self.favourite = favourite
        self.foreign = foreign
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        file = try c.decode(String.self, forKey: .file)
        parameters = try c.decodeIfPresent(GenerationParameters.self, forKey: .parameters) ?? GenerationParameters()
        batchIndex = try c.decodeIfPresent(Int.self, forKey: .batchIndex) ?? 0
        created = try c.decodeIfPresent(String.self, forKey: .created)
        seconds = try c.decodeIfPresent(Double.self, forKey: .seconds)
        favourite = try c.decodeIfPresent(Bool.self, forKey: .favourite) ?? false
        foreign = try c.decodeIfPresent(Bool.self, forKey: .foreign) ?? false
    }
}

/// A session folder as listed in the session picker.
public struct SessionInfo: Equatable, Sendable {
    public var path: String
    public var name: String
    public var imageCount: Int
    public init(path: String, name: String, imageCount: Int) {
        self.path = path
        self.name = name
        self.imageCount = imageCount
    }
}

/// What opening a session found and repaired.
public struct GalleryLoadReport: Equatable, Sendable {
    public var journalRecords = 0
    public var tornRecords = 0
    public var corruptRecords = 0
    public var recoveredFromPNG = 0
    public var missingFiles = 0
    public var removedTemporaries = 0
    public var compacted = false
    /// Why the repaired journal could not be written (a read-only session is still read in full).
    public var repairError: String?
    public var needsRepair: Bool { tornRecords + corruptRecords + recoveredFromPNG + missingFiles > 0 }
    public var notes: [String] {
        var n: [String] = []
        if tornRecords > 0 { n.append("ignored \(tornRecords) torn journal record(s)") }
        if corruptRecords > 0 { n.append("ignored \(corruptRecords) damaged journal record(s)") }
        if recoveredFromPNG > 0 { n.append("recovered \(recoveredFromPNG) image(s) from their PNG metadata") }
        if missingFiles > 0 { n.append("dropped \(missingFiles) entr(ies) whose PNG is gone") }
        if let repairError { n.append("the repaired index could not be written (\(repairError)); the images are shown as read") }
        return n
    }
}

public struct GalleryError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// A gallery session: a folder of PNGs (each carrying full metadata) plus `index.journal`, an
/// append-only journal of fsync'd, checksummed records (`add`, `favourite`, `delete`).
///
/// Crash safety: PNGs are written to a temporary name, fsync'd and renamed; the journal record
/// is appended (and fsync'd) after the rename. Opening a session replays the journal, ignores a
/// torn last record and damaged records, drops entries whose PNG is gone, and adds PNGs the
/// journal does not know (a crash between rename and append, or a lost journal) from their
/// metadata. When anything was repaired the journal is rewritten atomically (temp + rename).
/// The index can therefore always be rebuilt from the PNGs alone; only favourite marks live
/// solely in the journal.
public final class GallerySession: @unchecked Sendable {
    public let directory: String
    public static let journalName = "index.journal"
    private let lock = NSLock()
    private var _entries: [GalleryEntry] = []
    private var counter = 0

    public var journalPath: String { (directory as NSString).appendingPathComponent(Self.journalName) }
    public var entries: [GalleryEntry] { lock.withLock { _entries } }

    /// The default root for sessions: `$XDG_DATA_HOME/kolors-studio/sessions`, else `~/.local/share/kolors-studio/sessions`.
    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let x = environment["XDG_DATA_HOME"], x.hasPrefix("/") {
            return "\(x)/kolors-studio/sessions"
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return "\(home)/.local/share/kolors-studio/sessions"
    }

    /// A new session folder name from a time: `2025-01-31_14-05-09`.
    public static func sessionName(for date: Date = Date()) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone.current
        f.dateFormat = "yyyy-MM-dd_HH-mm-ss"
        return f.string(from: date)
    }

    /// A session object; nothing is created on disk until the first image is added.
    public init(directory: String) {
        self.directory = directory
    }

    /// Opens (and repairs when needed) the session in `directory`. A folder that does not exist is an empty session.
    public static func open(directory: String) throws -> (GallerySession, GalleryLoadReport) {
        let s = GallerySession(directory: directory)
        let report = try s.load()
        return (s, report)
    }

    /// Reads (and repairs when needed) this session from its folder. Images added while it runs
    /// (a job that finished during a long index) are kept; a session that cannot be written is
    /// read all the same (the repair is skipped and noted).
    public func index() throws -> GalleryLoadReport { try load() }

    /// Why images cannot be saved into `directory` now, in a few words (nil: they can). It tries
    /// for real (a temporary file, or for a missing folder a temporary folder in its nearest
    /// existing parent, removed at once), so read-only file systems, permissions and folders in
    /// the way are all caught; nothing is left behind.
    public static func writeProblem(directory: String) -> String? {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: directory, isDirectory: &isDir) {
            guard isDir.boolValue else { return "\(directory) is a file, not a folder" }
            let probe = (directory as NSString).appendingPathComponent(".kolors-write-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            let fd = Glibc.open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return "the folder is not writable (\(String(cString: strerror(errno))))" }
            close(fd)
            unlink(probe)
            let journal = (directory as NSString).appendingPathComponent(journalName)
            if fm.fileExists(atPath: journal) {
                let jfd = Glibc.open(journal, O_WRONLY | O_APPEND | O_CLOEXEC)
                guard jfd >= 0 else { return "its \(journalName) is not writable (\(String(cString: strerror(errno))))" }
                close(jfd)
            }
            return nil
        }
        // missing: its nearest existing parent must take a new folder
        var parent = (directory as NSString).deletingLastPathComponent
        while !parent.isEmpty, parent != "/", !fm.fileExists(atPath: parent) { parent = (parent as NSString).deletingLastPathComponent }
        if parent.isEmpty { parent = "." }
        guard fm.fileExists(atPath: parent, isDirectory: &isDir), isDir.boolValue else {
            return "cannot create the folder: \(parent) is not a folder"
        }
        let probe = (parent as NSString).appendingPathComponent(".kolors-mkdir-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard mkdir(probe, 0o700) == 0 else {
            return "cannot create the folder: \(parent) does not accept new folders (\(String(cString: strerror(errno))))"
        }
        rmdir(probe)
        return nil
    }

    // MARK: - journal records

    struct Record: Codable {
        var op: String              // add | favourite | delete
        var entry: GalleryEntry?
        var file: String?
        var value: Bool?
    }

    static func encodeLine(_ r: Record) -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? enc.encode(r)) ?? Data()
        let crc = CRC32.checksum(json)
        var line = Data("K1 \(String(crc, radix: 16).leftPad(8)) ".utf8)
        line.append(json)
        line.append(0x0A)
        return line
    }

    /// Decodes one journal line (without its newline); nil when damaged.
    static func decodeLine(_ line: Data) -> Record? {
        let bytes = [UInt8](line)
        guard bytes.count > 12, bytes[0] == UInt8(ascii: "K"), bytes[1] == UInt8(ascii: "1"), bytes[2] == 0x20,
              bytes[11] == 0x20,
              let crc = UInt32(String(decoding: bytes[3..<11], as: UTF8.self), radix: 16) else { return nil }
        let json = Data(bytes[12...])
        guard CRC32.checksum(json) == crc else { return nil }
        return try? JSONDecoder().decode(Record.self, from: json)
    }

    // MARK: - loading

    private func load() throws -> GalleryLoadReport {
        var report = GalleryLoadReport()
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else { return report }

        var entries: [GalleryEntry] = []
        var index: [String: Int] = [:]
        var deleted = Set<String>()
        if let data = fm.contents(atPath: journalPath) {
            var start = data.startIndex
            while start < data.endIndex {
                guard let nl = data[start...].firstIndex(of: 0x0A) else {
                    report.tornRecords += 1      // no newline: the write was cut short
                    break
                }
                let line = data[start..<nl]
                start = data.index(after: nl)
                if line.isEmpty { continue }
                guard let r = Self.decodeLine(Data(line)) else { report.corruptRecords += 1; continue }
                report.journalRecords += 1
                switch r.op {
                case "add":
                    guard let e = r.entry else { continue }
                    deleted.remove(e.file)
                    if let i = index[e.file] { entries[i] = e } else { index[e.file] = entries.count; entries.append(e) }
                case "favourite":
                    if let f = r.file, let i = index[f] { entries[i].favourite = r.value ?? true }
                case "delete":
                    if let f = r.file {
                        deleted.insert(f)
                        if let i = index[f] {
                            entries.remove(at: i)
                            index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.file, $0) })
                        }
                    }
                default:
                    report.corruptRecords += 1
                }
            }
        }
        // reconcile with the folder
        let names = (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        for n in names where n.hasPrefix(".") && n.contains(".tmp-") {
            // a PNG (or journal) write that never reached its rename: never visible, safe to drop
            try? fm.removeItem(atPath: (directory as NSString).appendingPathComponent(n))
            report.removedTemporaries += 1
        }
        let pngs = Set(names.filter { $0.lowercased().hasSuffix(".png") && !$0.hasPrefix(".") })
        let before = entries.count
        entries.removeAll { !pngs.contains($0.file) }
        report.missingFiles = before - entries.count
        let known = Set(entries.map(\.file))
        for name in pngs.subtracting(known).sorted() {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let meta = try? PNGFile.readText(path) else { continue }
            let parsed = ImageMetadata.parse(meta.texts)
            var p = parsed?.parameters ?? GenerationParameters(prompt: "", width: meta.width, height: meta.height)
            if parsed == nil { p.width = meta.width; p.height = meta.height }
            entries.append(GalleryEntry(file: name, parameters: p, batchIndex: parsed?.batchIndex ?? 0,
                                        created: parsed?.record?.created, seconds: parsed?.record?.seconds,
                                        foreign: parsed?.source != .kolors))
            report.recoveredFromPNG += 1
        }
        lock.withLock {
            // images saved while the folder was being read stay (add() never reuses a file name)
            let known = Set(entries.map(\.file))
            entries += _entries.filter { !known.contains($0.file) }
            // keep gallery order by file name (numbered files sort by creation)
            entries.sort { $0.file.localizedStandardCompare($1.file) == .orderedAscending }
            _entries = entries
            counter = max(counter, entries.compactMap { Int($0.file.prefix { $0.isNumber }) }.max() ?? 0)
        }
        if report.needsRepair {
            do {
                try compact()
                report.compacted = true
            } catch {
                // a read-only session: show what it holds, repair nothing
                report.repairError = "\(error)"
            }
        }
        return report
    }

    /// Rewrites the journal from the current entries, atomically (temp file, fsync, rename, fsync folder).
    public func compact() throws {
        try lock.withLock {
            var data = Data()
            for e in _entries { data.append(Self.encodeLine(Record(op: "add", entry: e))) }
            try ensureDirectory()
            let tmp = (directory as NSString).appendingPathComponent(".\(Self.journalName).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            try writeSynced(data, to: tmp, append: false)
            guard rename(tmp, journalPath) == 0 else {
                unlink(tmp)
                throw GalleryError(message: "cannot replace \(journalPath): \(String(cString: strerror(errno)))")
            }
            syncDirectory()
        }
    }

    // MARK: - changes

    /// Saves a finished image (PNG with metadata, atomically) and records it in the journal.
    @discardableResult
    public func add(image: RGBImage, record: ImageRecord) throws -> GalleryEntry {
        try lock.withLock {
            try ensureDirectory()
            // never replace a file: the folder may hold images this object has not indexed yet
            var name: String
            var path: String
            repeat {
                counter += 1
                name = String(format: "%05d-%llu.png", counter, record.parameters.seed)
                path = (directory as NSString).appendingPathComponent(name)
            } while FileManager.default.fileExists(atPath: path)
            try PNGFile.write(image, to: path, texts: ImageMetadata.texts(for: record), atomically: true)
            let entry = GalleryEntry(file: name, parameters: record.parameters, batchIndex: record.batchIndex,
                                     created: record.created, seconds: record.seconds)
            try appendRecord(Record(op: "add", entry: entry))
            _entries.append(entry)
            return entry
        }
    }

    public func setFavourite(file: String, _ value: Bool) throws {
        try lock.withLock {
            guard let i = _entries.firstIndex(where: { $0.file == file }) else { return }
            try appendRecord(Record(op: "favourite", file: file, value: value))
            _entries[i].favourite = value
        }
    }

    /// Deletes the PNG, then records the deletion (a crash in between is repaired on open).
    public func delete(file: String) throws {
        try lock.withLock {
            guard let i = _entries.firstIndex(where: { $0.file == file }) else { return }
            let path = (directory as NSString).appendingPathComponent(file)
            if unlink(path) != 0 && errno != ENOENT {
                throw GalleryError(message: "cannot delete \(path): \(String(cString: strerror(errno)))")
            }
            try appendRecord(Record(op: "delete", file: file))
            _entries.remove(at: i)
        }
    }

    public func path(of file: String) -> String { (directory as NSString).appendingPathComponent(file) }

    // MARK: - file helpers (call with the lock held)

    private func ensureDirectory() throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw GalleryError(message: "cannot create the session folder \(directory): \(error.localizedDescription)")
        }
    }

    private func appendRecord(_ r: Record) throws {
        let existed = FileManager.default.fileExists(atPath: journalPath)
        try writeSynced(Self.encodeLine(r), to: journalPath, append: true)
        if !existed { syncDirectory() }
    }

    private func writeSynced(_ data: Data, to path: String, append: Bool) throws {
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
        let fd = Glibc.open(path, flags, 0o644)
        guard fd >= 0 else { throw GalleryError(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let ok = data.withUnsafeBytes { raw -> Bool in
            var off = 0
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
        guard ok, fsync(fd) == 0 else { throw GalleryError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    private func syncDirectory() {
        let fd = Glibc.open(directory, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }

    // MARK: - sessions

    /// Session folders under `root`, newest first: folders holding an `index.journal` or images
    /// named as sessions name them (`NNNNN-<seed>.png`, a session whose journal was lost); other
    /// folders beside them are not sessions. `include` is listed in any case (the open session).
    public static func listSessions(root: String, include: String? = nil) -> [SessionInfo] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root) else { return [] }
        var out: [SessionInfo] = []
        for n in names where !n.hasPrefix(".") {
            let p = (root as NSString).appendingPathComponent(n)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue else { continue }
            let files = (try? fm.contentsOfDirectory(atPath: p)) ?? []
            let pngs = files.filter { $0.lowercased().hasSuffix(".png") && !$0.hasPrefix(".") }
            guard p == include || files.contains(journalName) || pngs.contains(where: isSessionImageName) else { continue }
            out.append(SessionInfo(path: p, name: n, imageCount: pngs.count))
        }
        return out.sorted { $0.name > $1.name }
    }

    /// `00012-4242.png`: how sessions name their images.
    public static func isSessionImageName(_ name: String) -> Bool {
        let parts = name.lowercased().dropLast(4).split(separator: "-", maxSplits: 1)
        return name.lowercased().hasSuffix(".png") && parts.count == 2 && parts[0].count >= 5
            && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
    }
}

/// CRC-32 (IEEE, as zlib and PNG use).
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ data: Data) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in data { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

extension String {
    func leftPad(_ n: Int, with c: Character = "0") -> String {
        count >= n ? self : String(repeating: c, count: n - count) + self
    }
}
