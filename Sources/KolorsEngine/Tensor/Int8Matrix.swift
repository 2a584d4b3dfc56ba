import CKolorsKernels
import Foundation

/// A weight matrix stored as int8 with one float32 scale per output row (weight-only
/// quantization, as ChatGLM3's `quantize(8)`): w ≈ q · scale. Half the memory of fp16.
public final class Int8Matrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let data: UnsafePointer<Int8>
    public let scales: Tensor
    /// Keeps `data` alive: an owned buffer, or the file it is mapped from.
    private let owner: AnyObject
    /// The mapping `data` lives in, when it is mapped.
    private let source: MappedTensor?

    private final class Buffer {
        let pointer: UnsafeMutablePointer<Int8>
        init(count: Int) { pointer = .allocate(capacity: max(count, 1)) }
        deinit { pointer.deallocate() }
    }

    /// Quantizes `weight` [rows, cols] row by row.
    public init(quantizing weight: Weight) {
        precondition(weight.shape.count == 2, "int8 quantization wants a matrix, got \(weight.shape)")
        rows = weight.shape[0]
        cols = weight.shape[1]
        let buffer = Buffer(count: rows * cols)
        owner = buffer
        data = UnsafePointer(buffer.pointer)
        scales = Tensor(shape: [rows], zeroed: false)
        source = nil
        let q = buffer.pointer, s = scales.pointer, n = cols
        parallelFor(rows, grain: 16) { r in
            let row = Tensor(shape: [n], zeroed: false)
            for i in r {
                weight.convertRows(i..<(i + 1), into: row.pointer)
                kk_quantize_row_int8(row.pointer, q + i * n, n, s + i)
            }
        }
        weight.releasePages()  // the fp16 source is no longer needed in memory
    }

    /// An int8 matrix stored in a safetensors file (our quantized-weight cache).
    public init(mapped: MappedTensor, scales: Tensor) {
        precondition(mapped.dtype == .i8 && mapped.shape.count == 2 && scales.count == mapped.shape[0])
        rows = mapped.shape[0]
        cols = mapped.shape[1]
        data = mapped.data.assumingMemoryBound(to: Int8.self)
        self.scales = scales
        owner = mapped.file
        source = mapped
    }

    /// Drops a mapped matrix's pages from this process (they stay in the page cache).
    public func releasePages() { source?.releasePages() }

    /// Rows `range` as float32 (q · scale) into `dst`.
    public func dequantizeRows(_ range: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        for (k, r) in range.enumerated() {
            kk_dequantize_int8(data + r * cols, scales.pointer[r], dst + k * cols, cols)
        }
    }

    public var bytes: Int { rows * cols + rows * 4 }

    private var sums: [Int32]?
    private let sumsLock = NSLock()

    /// Σ_k q[n, k] per row (the zero-point correction of u8 × s8 products), computed once.
    public var rowSums: [Int32] {
        sumsLock.lock(); defer { sumsLock.unlock() }
        if let sums { return sums }
        var out = [Int32](repeating: 0, count: rows)
        let d = data, c = cols
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            parallelFor(rows, grain: 64) { r in
                for i in r {
                    var s: Int32 = 0
                    let row = d + i * c
                    for k in 0..<c { s += Int32(row[k]) }
                    base[i] = s
                }
            }
        }
        sums = out
        return out
    }
}
