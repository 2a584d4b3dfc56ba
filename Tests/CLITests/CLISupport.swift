import Foundation
import KolorsTestSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `kolors` binary (`.build/debug/kolors`, built by `swift build --build-tests`).
enum CLI {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let binary = root + "/.build/debug/kolors"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }
    static var tinyKolors: String { root + "/Tests/Fixtures/tiny-kolors" }
    static func fixture(_ relative: String) -> String { root + "/Tests/Fixtures/" + relative }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs `kolors arguments…`. `generate` runs get `--precision fp32` unless they name one:
    /// the parity checks hold float32 to diffusers' float32, and the default precision is bf16
    /// on CPUs with AVX512-BF16.
    static func run(_ arguments: [String], cwd: String? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        var arguments = arguments
        if arguments.first == "generate" && !arguments.contains("--precision") { arguments += ["--precision", "fp32"] }
        process.arguments = arguments
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }
}

extension CLI {
    /// A float32 .npy file as `kolors generate --save-latents` writes it: its header and values.
    static func readNpy(_ path: String) throws -> (header: String, values: [Float]) {
        let npy = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(npy[8]) | Int(npy[9]) << 8
        let header = String(decoding: npy[10..<(10 + headerLength)], as: UTF8.self)
        let values = npy[(10 + headerLength)...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return (header, values)
    }

    /// ‖a − b‖ / ‖b‖ over the first min(count) values.
    static func relativeL2(_ a: [Float], _ b: UnsafePointer<Float>, count: Int) -> Double {
        var num = 0.0, den = 0.0
        for k in 0..<min(a.count, count) {
            num += Double(a[k] - b[k]) * Double(a[k] - b[k])
            den += Double(b[k]) * Double(b[k])
        }
        return (num / den).squareRoot()
    }
}


extension CLI {
    /// How a run of the binary ended, measured from outside.
    struct Outcome: CustomStringConvertible {
        /// Exit status (nil when killed by a signal).
        let status: Int32?
        /// The signal that ended it (a trap is SIGILL or SIGTRAP, an abort SIGABRT).
        let signal: Int32?
        /// Killed by us after the time limit: it hung.
        let timedOut: Bool
        /// Peak resident memory of the child, bytes.
        let maxRSS: Int
        let seconds: Double
        let stdout: String
        let stderr: String

        /// The stderr text without surrounding blank lines.
        var message: String { stderr.trimmingCharacters(in: .whitespacesAndNewlines) }
        var description: String {
            "status \(status.map(String.init) ?? "-") signal \(signal.map(String.init) ?? "-") timedOut \(timedOut) rss \(maxRSS >> 20) MiB \(String(format: "%.2f", seconds)) s stderr: \(message.suffix(600))"
        }
    }

    /// Runs `kolors arguments…` with posix_spawn and wait4, so that a trap (a signal), a hang
    /// (killed after `timeout` seconds) and the child's own peak memory are all visible.
    /// stdin is /dev/null; stdout and stderr go through files. As `run`, `generate` gets
    /// `--precision fp32` unless one is named.
    static func runMeasured(_ arguments: [String], timeout: Double = 60) throws -> Outcome {
        let dir = try TemporaryDirectory()
        let outPath = dir.path + "/stdout", errPath = dir.path + "/stderr"
        var arguments = arguments
        if arguments.first == "generate" && !arguments.contains("--precision") { arguments += ["--precision", "fp32"] }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([binary] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let started = Date()
        let rc = posix_spawn(&pid, binary, &actions, nil, argv, environ)
        guard rc == 0 else { throw SpawnError("posix_spawn failed: \(rc)") }
        let killed = KillFlag()
        let child = pid
        let killer = DispatchWorkItem {
            killed.value.store(true, ordering: .relaxed)
            kill(child, SIGKILL)
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        killer.cancel()
        let seconds = Date().timeIntervalSince(started)
        let signaled = status & 0x7F != 0
        return Outcome(status: signaled ? nil : (status >> 8) & 0xFF, signal: signaled ? status & 0x7F : nil,
                       timedOut: killed.value.load(ordering: .relaxed), maxRSS: Int(usage.ru_maxrss) * 1024, seconds: seconds,
                       stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                       stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }
}

/// Set by the timer that kills a hung child.
final class KillFlag: Sendable {
    let value = Atomic<Bool>(false)
}

struct SpawnError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
