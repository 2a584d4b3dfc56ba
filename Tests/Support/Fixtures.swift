import Foundation
import KolorsEngine

/// Paths into the repository's committed fixtures (`Tests/Fixtures/`), shared by every test target.
public enum Fixtures {
    /// The repository root.
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    public static func path(_ relative: String) -> String { root + "/Tests/Fixtures/" + relative }

    /// The tiny random-weight Kolors written by scripts/fixtures/make_tiny_kolors.py.
    public static var tinyKolors: String { path("tiny-kolors") }

    /// A reference safetensors file (`Tests/Fixtures/references/<name>`) as float32 tensors by name.
    public final class References: @unchecked Sendable {
        public let file: SafetensorsFile
        public init(_ name: String) throws { file = try SafetensorsFile(path: Fixtures.path("references/\(name)")) }

        public subscript(_ name: String) -> Tensor {
            get throws { try file.mapped(name).toFloat32() }
        }

        /// An integer tensor (I64/I32) as rows of its last dimension.
        public func ints(_ name: String) throws -> [[Int]] {
            let m = try file.mapped(name)
            let flat = try m.toInt64().map { Int($0) }
            let cols = m.shape.last ?? 1
            return stride(from: 0, to: flat.count, by: cols).map { Array(flat[$0..<($0 + cols)]) }
        }

        public func has(_ name: String) -> Bool { file.info(name) != nil }
        public var names: [String] { file.names }
    }

    /// A reference manifest (JSON) as a dictionary.
    public static func manifest(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path("references/\(name)")))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }
}

/// ‖a − b‖ / ‖b‖ (‖a − b‖ when b is zero).
public func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.count == b.count, "relativeError: \(a.shape) vs \(b.shape)")
    var num = 0.0, den = 0.0
    for i in 0..<a.count {
        let d = Double(a.pointer[i]) - Double(b.pointer[i])
        num += d * d
        den += Double(b.pointer[i]) * Double(b.pointer[i])
    }
    return den == 0 ? num.squareRoot() : (num / den).squareRoot()
}

/// max |a − b|, treating equal values (also equal infinities) as equal.
public func maxAbsError(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.count == b.count, "maxAbsError: \(a.shape) vs \(b.shape)")
    var m = 0.0
    for i in 0..<a.count {
        let x = a.pointer[i], y = b.pointer[i]
        if x == y { continue }
        m = max(m, abs(Double(x) - Double(y)))
    }
    return m
}

/// max |t| over the finite values.
public func maxAbs(_ t: Tensor) -> Double {
    var m = 0.0
    for i in 0..<t.count where t.pointer[i].isFinite { m = max(m, abs(Double(t.pointer[i]))) }
    return m
}

/// A temporary directory removed when the value is released.
public final class TemporaryDirectory {
    public let path: String
    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
