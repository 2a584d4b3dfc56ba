import Foundation

/// A contiguous row-major float32 tensor: NCHW images and latents, [batch, tokens, channels]
/// sequences, weight matrices. Views (reshape, leading-dimension slices) share storage and
/// cost nothing; every operation that changes layout makes a new tensor.
public struct Tensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    public let storage: TensorStorage
    /// Offset of element 0 inside `storage`, in elements.
    public let offset: Int

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    /// A new tensor, uninitialised unless `zeroed`.
    public init(shape: [Int], zeroed: Bool = true) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        let n = shape.reduce(1, *)
        self.shape = shape
        storage = TensorStorage(count: n, zeroed: zeroed)
        offset = 0
    }

    /// Wraps existing storage.
    public init(shape: [Int], storage: TensorStorage, offset: Int = 0) {
        precondition(offset >= 0 && offset + shape.reduce(1, *) <= storage.count,
                     "view \(shape) at \(offset) exceeds storage of \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.offset = offset
    }

    /// A tensor holding a copy of `values`.
    public init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(shape: shape, zeroed: false)
        values.withUnsafeBufferPointer { src in
            pointer.update(from: src.baseAddress!, count: values.count)
        }
    }

    /// A tensor filled with `value`.
    public static func full(_ shape: [Int], _ value: Float) -> Tensor {
        let t = Tensor(shape: shape, zeroed: false)
        t.pointer.update(repeating: value, count: t.count)
        return t
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, zeroed: true) }

    /// First element. Mutation through this pointer writes into shared storage.
    @inlinable public var pointer: UnsafeMutablePointer<Float> { storage.pointer + offset }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    /// A copy of the values (for tests and small tensors).
    public var values: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    public func dim(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    // MARK: views

    /// Same storage, new shape (one dimension may be -1).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let k = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != k }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            s[k] = count / known
        }
        precondition(s.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: s, storage: storage, offset: offset)
    }

    /// Rows `range` of the leading dimension, sharing storage.
    public func slice(_ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[0], "slice \(range) of \(shape)")
        let inner = shape.dropFirst().reduce(1, *)
        var s = shape
        s[0] = range.count
        return Tensor(shape: s, storage: storage, offset: offset + range.lowerBound * inner)
    }

    /// Item `i` of the leading dimension, without that dimension.
    public func item(_ i: Int) -> Tensor {
        slice(i..<(i + 1)).reshaped(Array(shape.dropFirst()))
    }

    /// An independent copy.
    public func copy() -> Tensor {
        let t = Tensor(shape: shape, zeroed: false)
        t.pointer.update(from: pointer, count: count)
        return t
    }

    /// Copies `other` (same element count) into this tensor's memory.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign \(other.shape) into \(shape)")
        pointer.update(from: other.pointer, count: count)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let n = count
        let head = (0..<min(n, 6)).map { String(format: "%.5g", pointer[$0]) }.joined(separator: ", ")
        return "Tensor(\(shape): [\(head)\(n > 6 ? ", …" : "")])"
    }
}

