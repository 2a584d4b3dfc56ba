import CKolorsKernels
import Foundation

/// Writes safetensors files (float32 tensors stored as F32, F16 or BF16), atomically:
/// a temporary file in the same folder is renamed into place when complete.
public enum SafetensorsWriter {
    public static func write(_ entries: [(name: String, tensor: Tensor, dtype: DType)],
                             metadata: [String: String] = [:], to path: String) throws {
        var header: [String: Any] = [:]
        var offset = 0
        var blobs: [Data] = []
        for (name, t, dtype) in entries {
            let data: Data
            switch dtype {
            case .f32:
                data = Data(bytes: t.pointer, count: t.count * 4)
            case .f16, .bf16:
                var half = [UInt16](repeating: 0, count: t.count)
                half.withUnsafeMutableBufferPointer { p in
                    if dtype == .f16 { kk_f32_to_f16(t.pointer, p.baseAddress, t.count) } else { kk_f32_to_bf16(t.pointer, p.baseAddress, t.count) }
                }
                data = half.withUnsafeBytes { Data($0) }
            default:
                throw CheckpointError("\(path): cannot write tensor '\(name)' as \(dtype.rawValue)")
            }
            header[name] = ["dtype": dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + data.count]] as [String: Any]
            offset += data.count
            blobs.append(data)
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // pad so tensor data is 8-byte aligned
        var out = Data()
        var len = UInt64(json.count).littleEndian
        out.append(Data(bytes: &len, count: 8))
        out.append(json)
        for b in blobs { out.append(b) }
        try AtomicFile.write(out, to: path)
    }
}

extension SafetensorsWriter {
    /// One tensor to stream into a file: its dtype, shape, and a closure that writes exactly
    /// `byteCount` bytes (called once, in order).
    public struct RawEntry {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let write: (FileHandle) throws -> Void
        public var byteCount: Int { shape.reduce(1, *) * dtype.size }

        public init(name: String, dtype: DType, shape: [Int], write: @escaping (FileHandle) throws -> Void) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.write = write
        }
    }

    /// Streams tensors of any dtype to `path` without holding the file in memory; the file
    /// appears under its name only when complete (temporary file, fsync, rename).
    public static func stream(_ entries: [RawEntry], metadata: [String: String] = [:], to path: String) throws {
        var header: [String: Any] = [:]
        var offset = 0
        for e in entries {
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.byteCount]] as [String: Any]
            offset += e.byteCount
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        try AtomicFile.write(to: path) { handle in
            var len = UInt64(json.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &len, count: 8))
            try handle.write(contentsOf: json)
            for e in entries {
                let before = try handle.offset()
                try e.write(handle)
                guard try handle.offset() - before == UInt64(e.byteCount) else {
                    throw CheckpointError("\(path): tensor '\(e.name)' wrote the wrong number of bytes")
                }
            }
        }
    }
}

/// Atomic file replacement: write a temporary sibling, fsync, rename over the target.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { try $0.write(contentsOf: data) }
    }

    /// Calls `body` with a handle on a temporary sibling of `path`; when it returns, syncs the
    /// file and renames it over `path`. On any error the temporary file is removed.
    public static func write(to path: String, _ body: (FileHandle) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
            throw CheckpointError("\(path): cannot create a temporary file in \(url.deletingLastPathComponent().path)")
        }
        do {
            let handle = try FileHandle(forWritingTo: tmp)
            try body(handle)
            try handle.synchronize()
            try handle.close()
            guard rename(tmp.path, path) == 0 else { throw CheckpointError("\(path): rename failed") }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
    }
}
