import Foundation

/// An optional diagnostic log (`KOLORS_STUDIO_LOG=/path/file`): terminal detection, the preview
/// mode, actions and sixel output. Off by default; it never writes to the terminal.
final class DebugLog: @unchecked Sendable {
    private let handle: FileHandle?
    private let lock = NSLock()
    private let start = Date()
    var enabled: Bool { handle != nil }

    init(path: String?) {
        guard let path, !path.isEmpty else { handle = nil; return }
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        handle = FileHandle(forWritingAtPath: path)
    }

    func write(_ line: @autoclosure () -> String) {
        guard let handle else { return }
        let text = String(format: "%8.3f ", Date().timeIntervalSince(start)) + line() + "\n"
        lock.withLock { handle.write(Data(text.utf8)) }
    }
}
