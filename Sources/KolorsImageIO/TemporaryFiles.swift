import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Atomic file writes through a temporary sibling (`.NAME.tmp-PID-RANDOM` in the same folder,
/// renamed over the target when complete), with a registry of the temporary files being
/// written. A process that must stop at once (the second Ctrl-C during a write) calls
/// `removeAllAndExit`, so no half-written `.NAME.png.tmp-*` is left behind.
public enum TemporaryFiles {
    /// Paths of the temporary files that exist now. Creating, renaming and removing one all
    /// happen under this lock, and `removeAllAndExit` keeps it until the process is gone, so
    /// no temporary file can appear (or be renamed half-way) after the clean-up.
    private static let live = Mutex<Set<String>>([])

    /// Creates the temporary sibling of `path` (exclusively: never an existing file) and
    /// registers it. Throws when the folder is missing or not writable.
    public static func create(for path: String) throws -> String {
        try live.withLock { set in
            for _ in 0..<8 {
                let temp = temporaryName(for: path)
                let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                if fd >= 0 {
                    close(fd)
                    set.insert(temp)
                    return temp
                }
                if errno != EEXIST { throw PNGError(path: path, message: "cannot create a file there (\(String(cString: strerror(errno))))") }
            }
            throw PNGError(path: path, message: "cannot create a temporary file beside it")
        }
    }

    /// Flushes `temp` to disk and moves it to `path`: `rename` when `overwrite`, else `link`
    /// (which fails on an existing file, so nothing is replaced) and unlink. The folder is
    /// synced afterwards. On failure the temporary file is removed.
    public static func commit(_ temp: String, to path: String, overwrite: Bool = true) throws {
        let fd = open(temp, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
        let failure: String? = live.withLock { set in
            defer { set.remove(temp) }
            if overwrite {
                guard rename(temp, path) == 0 else {
                    let message = String(cString: strerror(errno))
                    unlink(temp)
                    return "rename failed: \(message)"
                }
                return nil
            }
            if link(temp, path) == 0 {
                unlink(temp)
                return nil
            }
            let code = errno
            // Filesystems without hard links (FAT, some FUSE mounts): check, then rename.
            if code != EEXIST && access(path, F_OK) != 0 && rename(temp, path) == 0 { return nil }
            unlink(temp)
            return code == EEXIST || access(path, F_OK) == 0 ? "already exists (not replaced)"
                : "cannot create it (\(String(cString: strerror(code))))"
        }
        if let failure { throw PNGError(path: path, message: failure) }
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Removes a temporary file that will not be committed.
    public static func discard(_ temp: String) {
        live.withLock { set in
            unlink(temp)
            set.remove(temp)
        }
    }

    /// Writes `bytes` to `path` atomically (through a registered temporary file).
    public static func write(_ bytes: [UInt8], to path: String, overwrite: Bool = true) throws {
        let temp = try create(for: path)
        let fd = open(temp, O_WRONLY | O_TRUNC | O_CLOEXEC)
        var written = 0, code: Int32 = 0
        if fd >= 0 {
            bytes.withUnsafeBytes { buffer in
                while written < buffer.count {
                    let n = pwrite(fd, buffer.baseAddress! + written, buffer.count - written, off_t(written))
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { code = errno; break }
                    written += n
                }
            }
            close(fd)
        } else {
            code = errno
        }
        guard fd >= 0, written == bytes.count else {
            discard(temp)
            throw PNGError(path: path, message: "cannot write (\(String(cString: strerror(code))))")
        }
        try commit(temp, to: path, overwrite: overwrite)
    }

    /// Removes every registered temporary file and exits with `status`. Never returns; other
    /// threads that try to create or commit a temporary file wait until the process is gone.
    public static func removeAllAndExit(_ status: Int32) -> Never {
        live.withLock { set in
            for temp in set { unlink(temp) }
            exit(status)
        }
    }
}

/// A unique temporary name next to `path` (same directory, so rename is atomic).
func temporaryName(for path: String) -> String {
    let slash = path.lastIndex(of: "/")
    let dir = slash.map { String(path[...$0]) } ?? ""
    let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
    return "\(dir).\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}
