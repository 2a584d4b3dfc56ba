import Foundation
import KolorsTestSupport

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
