import Foundation
import KolorsEngine

/// Int8-quantized text-encoder weights cached on disk as a safetensors file of ours (`I8`
/// matrices plus `F32` row scales), so later starts map them instead of quantizing six billion
/// parameters again. The file name is keyed by the source files' paths, sizes and dates.
public struct Int8WeightCache: Sendable {
    public let path: String

    /// The default folder: `$KOLORS_CACHE_DIR`, else `$XDG_CACHE_HOME/kolors-studio`, else
    /// `~/.cache/kolors-studio`.
    public static var defaultDirectory: String {
        let env = ProcessInfo.processInfo.environment
        if let d = env["KOLORS_CACHE_DIR"], !d.isEmpty { return d }
        let base = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache")
        return base + "/kolors-studio"
    }

    /// The cache entry for `archive`'s files in `directory`.
    public init(directory: String, archive: SafetensorsArchive) {
        var sha = SHA256()
        for f in archive.files {
            let attrs = try? FileManager.default.attributesOfItem(atPath: f.path)
            let date = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            sha.update(Array("\(f.path)|\(f.fileSize)|\(date)\n".utf8))
        }
        path = directory + "/int8/text_encoder-" + String(SHA256.hex(sha.finalize()).prefix(16)) + ".safetensors"
    }

    /// The cached file, if it exists and is readable.
    public func open() -> SafetensorsFile? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try? SafetensorsFile(path: path)
    }

    /// The matrix `name` from an open cache file.
    public static func matrix(_ name: String, in file: SafetensorsFile) -> Int8Matrix? {
        guard let q = try? file.mapped(name), q.dtype == .i8, q.shape.count == 2,
              let s = try? file.mapped(name + ".scale").toFloat32(), s.count == q.shape[0] else { return nil }
        return Int8Matrix(mapped: q, scales: s)
    }

    /// Writes every matrix (streamed: the file is never held in memory).
    public func write(_ matrices: [(name: String, matrix: Int8Matrix)]) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        var entries: [SafetensorsWriter.RawEntry] = []
        for (name, m) in matrices {
            entries.append(.init(name: name, dtype: .i8, shape: [m.rows, m.cols]) { h in
                try h.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: m.data), count: m.rows * m.cols,
                                             deallocator: .none))
            })
            entries.append(.init(name: name + ".scale", dtype: .f32, shape: [m.rows]) { h in
                try h.write(contentsOf: Data(bytes: m.scales.pointer, count: m.rows * 4))
            })
        }
        try SafetensorsWriter.stream(entries, metadata: ["format": "kolors-studio int8 weight cache"], to: path)
    }
}

/// The text encoder's large matrices rounded to bf16 once and cached on disk as a safetensors
/// file of ours (`--text-encoder-precision bf16`, 12.4 GB for ChatGLM3-6B), keyed like
/// `Int8WeightCache`. Later starts map it: oneDNN's bf16 products then read the mapped matrices
/// as they are, with no per-prompt fp16 → bf16 pass over six billion weights.
public struct BF16WeightCache: Sendable {
    public let path: String

    public init(directory: String, archive: SafetensorsArchive) {
        path = Int8WeightCache(directory: directory, archive: archive).path
            .replacingOccurrences(of: "/int8/", with: "/bf16/")
    }

    /// The cached file, if it exists and is readable.
    public func open() -> SafetensorsFile? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try? SafetensorsFile(path: path)
    }

    /// The matrix `name` from an open cache file, if it is there as a bf16 matrix of `shape`.
    public static func matrix(_ name: String, shape: [Int], in file: SafetensorsFile) -> Weight? {
        guard let m = try? file.mapped(name), m.dtype == .bf16, m.shape == shape else { return nil }
        return Weight(mapped: m, usedOncePerRun: true)
    }

    /// Writes `names` of `archive` rounded to bf16, a block of rows at a time (streamed: the file
    /// is never held in memory).
    public func write(_ names: [String], from archive: SafetensorsArchive) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        var entries: [SafetensorsWriter.RawEntry] = []
        for name in names {
            let m = try archive.mapped(name)
            guard m.shape.count == 2 else { continue }
            let weight = Weight(mapped: m)
            let (rows, cols) = (m.shape[0], m.shape[1])
            entries.append(.init(name: name, dtype: .bf16, shape: m.shape) { h in
                let block = max(1, min(rows, (8 << 20) / max(1, cols)))
                let bits = UnsafeMutablePointer<UInt16>.allocate(capacity: block * cols)
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: block * cols)
                defer { bits.deallocate(); scratch.deallocate() }
                var r0 = 0
                while r0 < rows {
                    let n = min(block, rows - r0)
                    parallelFor(n, grain: 16) { r in
                        weight.convertRowsToBF16((r0 + r.lowerBound)..<(r0 + r.upperBound), into: bits + r.lowerBound * cols,
                                                 scratch: scratch + r.lowerBound * cols)
                    }
                    try h.write(contentsOf: Data(bytesNoCopy: bits, count: n * cols * 2, deallocator: .none))
                    r0 += n
                }
                m.releasePages()
            })
        }
        try SafetensorsWriter.stream(entries, metadata: ["format": "kolors-studio bf16 weight cache"], to: path)
    }
}