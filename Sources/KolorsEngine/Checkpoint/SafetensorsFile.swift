import CKolorsKernels
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An error about a checkpoint file, naming the file (and the tensor when there is one).
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where one tensor lives in a safetensors file.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let range: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file, memory-mapped read-only and validated completely before any tensor is
/// handed out: bounded header, well-formed JSON, known dtypes, shape × dtype size equal to the
/// byte range, ranges ordered, inside the file and non-overlapping, no overflow anywhere.
/// A hostile file gives a `CheckpointError` naming the file and tensor.
public final class SafetensorsFile: @unchecked Sendable {
    /// Headers of real checkpoints are well under 1 MB (Kolors' UNet: ~170 kB).
    public static let maxHeaderBytes = 100 * 1024 * 1024

    public let path: String
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]
    /// Names in file order.
    public let names: [String]
    public let fileSize: Int
    private let base: UnsafeMutableRawPointer?
    private let mappedSize: Int
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        // O_NONBLOCK: a FIFO in place of the file must not block here; fstat refuses it below.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw CheckpointError("\(path): cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CheckpointError("\(path): cannot stat") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw CheckpointError("\(path): not a regular file") }
        let size = Int(st.st_size)
        fileSize = size
        guard size >= 8 else { throw CheckpointError("\(path): too short for a safetensors file (\(size) bytes)") }

        // Read the 8-byte header length and the header with pread (no mapping yet).
        var lenBytes: UInt64 = 0
        guard pread(fd, &lenBytes, 8, 0) == 8 else { throw CheckpointError("\(path): cannot read the header length") }
        let headerLen = UInt64(littleEndian: lenBytes)
        guard headerLen >= 2, headerLen <= UInt64(SafetensorsFile.maxHeaderBytes) else {
            throw CheckpointError("\(path): header length \(headerLen) is not plausible (file is not safetensors or is corrupt)")
        }
        guard headerLen <= UInt64(size - 8) else {
            throw CheckpointError("\(path): header length \(headerLen) runs past the end of the file (\(size) bytes): truncated?")
        }
        var header = [UInt8](repeating: 0, count: Int(headerLen))
        let got = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(headerLen), 8) }
        guard got == Int(headerLen) else { throw CheckpointError("\(path): cannot read the header") }
        dataStart = 8 + Int(headerLen)
        let dataSize = size - dataStart

        let parsed = try SafetensorsFile.parseHeader(header, path: path, dataSize: dataSize)
        tensors = parsed.tensors
        metadata = parsed.metadata
        names = parsed.order

        if size > 0 {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else { throw CheckpointError("\(path): mmap failed (\(String(cString: strerror(errno))))") }
            base = p
            mappedSize = size
        } else {
            base = nil
            mappedSize = 0
        }
    }

    deinit {
        if let base { munmap(base, mappedSize) }
    }

    /// Parses and validates a header. Public for the corruption tests.
    static func parseHeader(_ bytes: [UInt8], path: String, dataSize: Int)
        throws -> (tensors: [String: TensorInfo], metadata: [String: String], order: [String])
    {
        let root: JSONValue
        do {
            root = try StrictJSONParser.parse(bytes)
        } catch {
            throw CheckpointError("\(path): header is not valid JSON (\(error))")
        }
        guard let members = root.objectValue else {
            throw CheckpointError("\(path): header is not a JSON object")
        }
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                guard let m = value.objectValue else {
                    throw CheckpointError("\(path): __metadata__ is not an object")
                }
                for (k, v) in m {
                    guard let s = v.stringValue else { throw CheckpointError("\(path): __metadata__[\(k)] is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard tensors[name] == nil else {
                throw CheckpointError("\(path): tensor '\(name)' appears twice")
            }
            guard value.objectValue != nil else {
                throw CheckpointError("\(path): tensor '\(name)': entry is not an object")
            }
            guard let dtypeName = value["dtype"]?.stringValue else {
                throw CheckpointError("\(path): tensor '\(name)': missing dtype")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw CheckpointError("\(path): tensor '\(name)': unknown dtype '\(dtypeName)'")
            }
            guard let shapeValues = value["shape"]?.arrayValue else {
                throw CheckpointError("\(path): tensor '\(name)': missing shape")
            }
            guard shapeValues.count <= 16 else {
                throw CheckpointError("\(path): tensor '\(name)': rank \(shapeValues.count) is not plausible")
            }
            var shape: [Int] = []
            var elements = 1
            for d in shapeValues {
                guard let n = d.intValue, n >= 0 else {
                    throw CheckpointError("\(path): tensor '\(name)': shape has an invalid dimension")
                }
                let (p, overflow) = elements.multipliedReportingOverflow(by: n)
                guard !overflow else { throw CheckpointError("\(path): tensor '\(name)': shape \(shape + [n]) overflows") }
                elements = p
                shape.append(n)
            }
            guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
                  let begin = offsets[0].intValue, let finish = offsets[1].intValue else {
                throw CheckpointError("\(path): tensor '\(name)': data_offsets must be two integers")
            }
            guard begin >= 0, finish >= begin else {
                throw CheckpointError("\(path): tensor '\(name)': data_offsets [\(begin), \(finish)] are not ordered")
            }
            guard finish <= dataSize else {
                throw CheckpointError("\(path): tensor '\(name)': data [\(begin), \(finish)) runs past the end of the data (\(dataSize) bytes): truncated file?")
            }
            let (bytesNeeded, overflow) = elements.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, bytesNeeded == finish - begin else {
                throw CheckpointError("\(path): tensor '\(name)': shape \(shape) × \(dtype.rawValue) needs \(overflow ? "too many" : String(bytesNeeded)) bytes but the file gives \(finish - begin)")
            }
            tensors[name] = TensorInfo(name: name, dtype: dtype, shape: shape, range: begin..<finish)
        }
        // Ranges must not overlap (empty tensors may sit anywhere).
        let sorted = tensors.values.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.range.lowerBound < a.range.upperBound {
            throw CheckpointError("\(path): tensors '\(a.name)' and '\(b.name)' overlap in the file")
        }
        let order = tensors.values.sorted { ($0.range.lowerBound, $0.name) < ($1.range.lowerBound, $1.name) }.map(\.name)
        return (tensors, metadata, order)
    }

    public func info(_ name: String) -> TensorInfo? { tensors[name] }

    /// A view of the tensor's bytes in the mapping.
    public func mapped(_ name: String) throws -> MappedTensor {
        guard let info = tensors[name] else { throw CheckpointError("\(path): no tensor '\(name)'") }
        let ptr = UnsafeRawPointer(base!) + dataStart + info.range.lowerBound
        return MappedTensor(info: info, data: ptr, file: self)
    }
}

/// A tensor's bytes inside a memory-mapped file, in its stored dtype. Keeps the file mapped.
public struct MappedTensor: @unchecked Sendable {
    public let info: TensorInfo
    public let data: UnsafeRawPointer
    public let file: SafetensorsFile

    public var name: String { info.name }
    public var dtype: DType { info.dtype }
    public var shape: [Int] { info.shape }
    public var count: Int { info.elementCount }

    /// Rows `rows` of the leading dimension, still in the mapping (e.g. one half of a fused
    /// `to_kv` matrix). The name gets a `[lo..<hi]` suffix for messages.
    public func rows(_ rows: Range<Int>) -> MappedTensor {
        precondition(!shape.isEmpty && rows.lowerBound >= 0 && rows.upperBound <= shape[0], "rows \(rows) of \(shape)")
        let inner = shape.dropFirst().reduce(1, *)
        let bytes = inner * dtype.size
        var s = shape
        s[0] = rows.count
        let start = info.range.lowerBound + rows.lowerBound * bytes
        let sub = TensorInfo(name: "\(name)[\(rows.lowerBound)..<\(rows.upperBound)]", dtype: dtype, shape: s,
                             range: start..<(start + rows.count * bytes))
        return MappedTensor(info: sub, data: data + rows.lowerBound * bytes, file: file)
    }

    /// Converts `count` elements starting at element `start` into float32 at `dst`.
    public func convert(elements start: Int, count n: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(start >= 0 && start + n <= count)
        switch dtype {
        case .f32:
            dst.update(from: (data + start * 4).assumingMemoryBound(to: Float.self), count: n)
        case .f16:
            kk_f16_to_f32((data + start * 2).assumingMemoryBound(to: UInt16.self), dst, n)
        case .bf16:
            kk_bf16_to_f32((data + start * 2).assumingMemoryBound(to: UInt16.self), dst, n)
        case .f64:
            let s = (data + start * 8).assumingMemoryBound(to: Double.self)
            for i in 0..<n { dst[i] = Float(s[i]) }
        case .i64:
            let s = (data + start * 8).assumingMemoryBound(to: Int64.self)
            for i in 0..<n { dst[i] = Float(s[i]) }
        case .i32:
            let s = (data + start * 4).assumingMemoryBound(to: Int32.self)
            for i in 0..<n { dst[i] = Float(s[i]) }
        case .u8:
            let s = (data + start).assumingMemoryBound(to: UInt8.self)
            for i in 0..<n { dst[i] = Float(s[i]) }
        default:
            preconditionFailure("\(dtype) cannot be converted to float32")
        }
    }

    /// A float32 copy (parallel conversion for large tensors).
    public func toFloat32() throws -> Tensor {
        guard dtype.isConvertibleToFloat else {
            throw CheckpointError("\(file.path): tensor '\(name)' has dtype \(dtype.rawValue), which cannot be used as float")
        }
        let t = Tensor(shape: shape, zeroed: false)
        let n = count
        let dst = t.pointer
        parallelFor(n, grain: 1 << 16) { r in convert(elements: r.lowerBound, count: r.count, into: dst + r.lowerBound) }
        return t
    }

    /// Tells the kernel this process no longer needs the tensor's pages (they stay in the page
    /// cache for the next reader); keeps the resident size of a layer-by-layer model small.
    public func releasePages() {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: data)
        let alignedStart = (start + page - 1) / page * page
        let end = start + info.range.count
        let alignedEnd = end / page * page
        guard alignedEnd > alignedStart else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: alignedStart), alignedEnd - alignedStart, MADV_DONTNEED)
    }

    /// Counts stored values that are NaN or ±∞, and fp16 values at ±65504 (the largest fp16:
    /// where an overflowing float32→fp16 conversion saturates), from the bits, without
    /// converting. Integer dtypes count nothing. For `kolors info --load-weights`.
    public func scanValues() -> (nonFinite: Int, fp16Limit: Int) {
        let n = count
        var bad = 0, limit = 0
        switch dtype {
        case .f16:
            let p = data.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n {
                let magnitude = p[i] & 0x7FFF
                bad += magnitude >= 0x7C00 ? 1 : 0
                limit += magnitude == 0x7BFF ? 1 : 0
            }
        case .bf16:
            let p = data.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { bad += p[i] & 0x7F80 == 0x7F80 ? 1 : 0 }
        case .f32:
            let p = data.assumingMemoryBound(to: UInt32.self)
            for i in 0..<n { bad += p[i] & 0x7F80_0000 == 0x7F80_0000 ? 1 : 0 }
        case .f64:
            let p = data.assumingMemoryBound(to: UInt64.self)
            for i in 0..<n { bad += p[i] & 0x7FF0_0000_0000_0000 == 0x7FF0_0000_0000_0000 ? 1 : 0 }
        default:
            break
        }
        return (bad, limit)
    }

    /// Integer values (for I64/I32 buffers such as position ids).
    public func toInt64() throws -> [Int64] {
        switch dtype {
        case .i64: return Array(UnsafeBufferPointer(start: data.assumingMemoryBound(to: Int64.self), count: count))
        case .i32: return UnsafeBufferPointer(start: data.assumingMemoryBound(to: Int32.self), count: count).map { Int64($0) }
        default: throw CheckpointError("\(file.path): tensor '\(name)' is \(dtype.rawValue), not an integer tensor")
        }
    }
}
