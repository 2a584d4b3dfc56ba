import Foundation
#if canImport(Glibc)
import Glibc
#endif

// Helpers for reading files and numbers we did not write: configs, tokenizers, metadata.
// Every file is opened without blocking (a FIFO or a device in place of a file must not hang
// the program), must be a regular file and is size-capped before anything is allocated;
// every number read from a file becomes an Int only when it is a whole number in range.

/// Reads small regular files (configs, indexes, tokenizer models) safely.
public enum RegularFile {
    /// Configs and shard indexes are a few kB; 16 MiB leaves room for anything real.
    public static let maxConfigBytes = 16 << 20

    /// The bytes of `path`, which must be a regular file of at most `maxBytes` bytes. Opens with
    /// `O_NONBLOCK` and checks the file type with `fstat` before reading, so a FIFO or device
    /// gives an error instead of blocking. Throws `RegularFileError` ("<path>: <reason>"), whose
    /// `missing` tells a missing file apart from an unreadable one.
    public static func read(_ path: String, maxBytes: Int = maxConfigBytes) throws -> Data {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw RegularFileError(path: path, reason: String(cString: strerror(code)), missing: code == ENOENT)
        }
        defer { close(fd) }
        let size = try checkedSize(fd, path: path, maxBytes: maxBytes)
        var data = Data(count: size)
        var done = 0
        try data.withUnsafeMutableBytes { buffer in
            while done < size {
                let n = pread(fd, buffer.baseAddress! + done, size - done, off_t(done))
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw RegularFileError(path: path, reason: "read failed (\(String(cString: strerror(errno))))") }
                if n == 0 { break }  // shrank while we read: keep what is there
                done += n
            }
        }
        return done == size ? data : data.prefix(done)
    }

    /// `fstat`s an open descriptor: the size of a regular file of at most `maxBytes` bytes.
    public static func checkedSize(_ fd: Int32, path: String, maxBytes: Int) throws -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw RegularFileError(path: path, reason: "cannot stat") }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG else {
            let what = type == S_IFDIR ? "a folder" : type == S_IFIFO ? "a FIFO (named pipe)"
                : type == S_IFCHR || type == S_IFBLK ? "a device" : "a special file"
            throw RegularFileError(path: path, reason: "is \(what), not a regular file")
        }
        let size = Int(st.st_size)
        guard size <= maxBytes else {
            throw RegularFileError(path: path, reason: "\(size) bytes, more than the \(maxBytes) bytes such a file may have")
        }
        return size
    }
}

/// Why `RegularFile.read` refused a file; `description` is "<path>: <reason>".
public struct RegularFileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    /// The file does not exist (as opposed to existing but being unreadable or unsuitable).
    public var missing = false
    public var description: String { "\(path): \(reason)" }
}

extension Int {
    /// `value` as an Int when it is a whole number inside `range`; nil for NaN, ±∞, fractions
    /// and anything outside (where `Int(value)` would trap).
    public init?(whole value: Double, in range: ClosedRange<Int>) {
        guard value.isFinite, value.rounded(.towardZero) == value,
              value >= Double(range.lowerBound), value <= Double(range.upperBound) else { return nil }
        // Double(Int.max) rounds up to 2^63, which does not convert: re-check after the bound.
        guard let exact = Int(exactly: value), range.contains(exact) else { return nil }
        self = exact
    }
}

/// A decoded config with range checks: `ConfigFile.decode` runs `validate()` right after
/// decoding, so every reader of a config (`info`, `generate`, the studio) gets the same
/// one-line error before any value is used to size a tensor or a loop.
public protocol ValidatedConfig: Decodable {
    /// Throws for any value this engine cannot use, naming the file and the key.
    func validate() throws
}

/// Range checks shared by the config validators; each message names the file and key.
public struct ConfigChecks {
    public let file: String

    public init(file: String) { self.file = file }

    public func fail(_ message: String) -> CheckpointError { CheckpointError("\(file): \(message)") }

    /// `value` must lie in `range`.
    public func check(_ key: String, _ value: Int, in range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw fail("\(key) must be between \(range.lowerBound) and \(range.upperBound) (got \(value))")
        }
    }

    /// Every entry in `range`, and exactly `count` entries when `count` is given.
    public func check(_ key: String, _ values: [Int], in range: ClosedRange<Int>, count: Int? = nil) throws {
        if let count, values.count != count {
            throw fail("\(key) has \(values.count) entries but there are \(count) blocks")
        }
        for v in values where !range.contains(v) {
            throw fail("\(key) entries must be between \(range.lowerBound) and \(range.upperBound) (got \(v))")
        }
    }

    /// A finite float inside `range` (bounds included unless `open`).
    public func check(_ key: String, _ value: Double, in range: ClosedRange<Double>, openLower: Bool = false) throws {
        guard value.isFinite, range.contains(value), !(openLower && value == range.lowerBound) else {
            let lower = openLower ? "above \(range.lowerBound)" : "at least \(range.lowerBound)"
            throw fail("\(key) must be a finite number \(lower) and at most \(range.upperBound) (got \(value))")
        }
    }
}
