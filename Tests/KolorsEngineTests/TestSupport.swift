import Foundation
import KolorsEngine

/// Paths into the repository's committed fixtures.
enum Fixtures {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func path(_ relative: String) -> String { root + "/Tests/Fixtures/" + relative }

    /// A reference safetensors file as float32 tensors by name.
    final class References: @unchecked Sendable {
        let file: SafetensorsFile
        init(_ name: String) throws { file = try SafetensorsFile(path: Fixtures.path("references/\(name)")) }
        subscript(_ name: String) -> Tensor {
            get throws { try file.mapped(name).toFloat32() }
        }
        func has(_ name: String) -> Bool { file.info(name) != nil }
    }
}

/// ‖a − b‖ / ‖b‖
func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.count == b.count, "relativeError: \(a.shape) vs \(b.shape)")
    var num = 0.0, den = 0.0
    for i in 0..<a.count {
        let d = Double(a.pointer[i]) - Double(b.pointer[i])
        num += d * d
        den += Double(b.pointer[i]) * Double(b.pointer[i])
    }
    return den == 0 ? num.squareRoot() : (num / den).squareRoot()
}

/// max |a − b|, treating equal infinities as equal.
func maxAbsError(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.count == b.count, "maxAbsError: \(a.shape) vs \(b.shape)")
    var m = 0.0
    for i in 0..<a.count {
        let x = a.pointer[i], y = b.pointer[i]
        if x == y { continue }
        m = max(m, abs(Double(x) - Double(y)))
    }
    return m
}

/// max |b|, for stating relative maxima.
func maxAbs(_ t: Tensor) -> Double {
    var m = 0.0
    for i in 0..<t.count where t.pointer[i].isFinite { m = max(m, abs(Double(t.pointer[i]))) }
    return m
}

/// A temporary directory removed when the value is released.
final class TemporaryDirectory {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
