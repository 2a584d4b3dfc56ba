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
    static var tinyKolors: String { path("tiny-kolors") }

    final class References: @unchecked Sendable {
        let file: SafetensorsFile
        init(_ name: String) throws { file = try SafetensorsFile(path: Fixtures.path("references/\(name)")) }
        subscript(_ name: String) -> Tensor {
            get throws { try file.mapped(name).toFloat32() }
        }
        func has(_ name: String) -> Bool { file.info(name) != nil }
        var names: [String] { file.names }
    }

    /// A reference manifest (JSON) as a dictionary.
    static func manifest(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path("references/\(name)")))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
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

func maxAbsError(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.count == b.count)
    var m = 0.0
    for i in 0..<a.count { m = max(m, abs(Double(a.pointer[i]) - Double(b.pointer[i]))) }
    return m
}
