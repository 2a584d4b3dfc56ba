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

    /// The tiny random-weight Kolors written by scripts/fixtures/make_tiny_kolors.py.
    static var tinyKolors: String { path("tiny-kolors") }

    final class References: @unchecked Sendable {
        let file: SafetensorsFile
        init(_ name: String) throws { file = try SafetensorsFile(path: Fixtures.path("references/\(name)")) }
        subscript(_ name: String) -> Tensor {
            get throws { try file.mapped(name).toFloat32() }
        }
        func ints(_ name: String) throws -> [[Int]] {
            let m = try file.mapped(name)
            let flat = try m.toInt64().map { Int($0) }
            let cols = m.shape.last ?? 1
            return stride(from: 0, to: flat.count, by: cols).map { Array(flat[$0..<($0 + cols)]) }
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

extension Fixtures {
    /// A reference manifest (JSON) as a dictionary.
    static func manifest(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path("references/\(name)")))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }
}
