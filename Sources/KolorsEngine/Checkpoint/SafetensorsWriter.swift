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

/// Atomic file replacement: write a temporary sibling, fsync, rename over the target.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
            throw CheckpointError("\(path): cannot create a temporary file in \(url.deletingLastPathComponent().path)")
        }
        do {
            let handle = try FileHandle(forWritingTo: tmp)
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
            guard rename(tmp.path, path) == 0 else { throw CheckpointError("\(path): rename failed") }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
    }
}
