import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Float32 memory for tensors: 64-byte aligned, zero-initialised on request, freed with the
/// last reference. Tensors share storage (views); writers own the discipline of not writing
/// into a storage other live tensors read.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int, zeroed: Bool = false) {
        precondition(count >= 0, "negative tensor size")
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw: UnsafeMutableRawPointer
        if let reused = TensorStorage.pool.take(bytes) {
            raw = reused
        } else {
            var fresh: UnsafeMutableRawPointer?
            guard posix_memalign(&fresh, 64, bytes) == 0, let fresh else {
                fatalError("out of memory allocating \(bytes) bytes for a tensor")
            }
            raw = fresh
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        if zeroed { memset(raw, 0, bytes) }
        TensorStorage.accounting.allocated(bytes)
    }

    deinit {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        TensorStorage.pool.give(UnsafeMutableRawPointer(pointer), bytes)
        TensorStorage.accounting.freed(bytes)
    }

    /// Large buffers of freed tensors, kept for the next tensor of the same size.
    public static let pool = BufferPool()

    /// Live and peak bytes held by tensors (for memory reports and tests of bounded memory).
    public static let accounting = MemoryAccounting()
}

/// Thread-safe counters of tensor memory.
public final class MemoryAccounting: @unchecked Sendable {
    private var lock = pthread_mutex_t()
    private var live = 0
    private var peak = 0

    init() { pthread_mutex_init(&lock, nil) }

    func allocated(_ bytes: Int) {
        pthread_mutex_lock(&lock)
        live += bytes
        if live > peak { peak = live }
        pthread_mutex_unlock(&lock)
    }

    func freed(_ bytes: Int) {
        pthread_mutex_lock(&lock)
        live -= bytes
        pthread_mutex_unlock(&lock)
    }

    public var liveBytes: Int {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        return live
    }

    public var peakBytes: Int {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        return peak
    }

    /// Starts a new peak measurement from the current live size.
    public func resetPeak() {
        pthread_mutex_lock(&lock)
        peak = live
        pthread_mutex_unlock(&lock)
    }
}

/// Freed large tensor buffers (≥ `minimumBytes`), kept for reuse by the next tensor of exactly
/// the same size, up to `capacityBytes` in all (the oldest are freed first). glibc serves large
/// allocations from fresh mmap'ed pages, and the first write to each page costs a page fault and
/// the kernel zeroing it: measured here, writing 84 MB into fresh pages takes 40 ms, into reused
/// ones 5 ms. A UNet forward allocates the same shapes again and again (every transformer block
/// of a level has the same sizes; every step repeats the last), so at 1024² this was several
/// seconds per forward in page faults. `drain()` frees everything kept (the pipeline calls it
/// when a generation ends, so nothing stays resident between runs).
public final class BufferPool: @unchecked Sendable {
    public let minimumBytes = 1 << 20
    /// `KOLORS_TENSOR_POOL_MB` sets it; default 1/16 of physical memory, at most 1 GiB.
    public let capacityBytes: Int = {
        if let mb = ProcessInfo.processInfo.environment["KOLORS_TENSOR_POOL_MB"].flatMap({ Int($0) }), (0...65536).contains(mb) {
            return mb << 20
        }
        let physical = Int(ProcessInfo.processInfo.physicalMemory)
        return min(1 << 30, physical / 16)
    }()
    private var lock = pthread_mutex_t()
    private var entries: [(bytes: Int, pointer: UnsafeMutableRawPointer)] = []  // oldest first
    private var held = 0

    init() { pthread_mutex_init(&lock, nil) }

    /// Bytes kept now.
    public var heldBytes: Int {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        return held
    }

    func take(_ bytes: Int) -> UnsafeMutableRawPointer? {
        guard bytes >= minimumBytes else { return nil }
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        guard let i = entries.lastIndex(where: { $0.bytes == bytes }) else { return nil }
        held -= bytes
        return entries.remove(at: i).pointer
    }

    func give(_ pointer: UnsafeMutableRawPointer, _ bytes: Int) {
        guard bytes >= minimumBytes, bytes <= capacityBytes else { free(pointer); return }
        var evicted: [UnsafeMutableRawPointer] = []
        pthread_mutex_lock(&lock)
        entries.append((bytes, pointer))
        held += bytes
        while held > capacityBytes {
            let oldest = entries.removeFirst()
            held -= oldest.bytes
            evicted.append(oldest.pointer)
        }
        pthread_mutex_unlock(&lock)
        evicted.forEach { free($0) }
    }

    /// Frees every kept buffer.
    public func drain() {
        pthread_mutex_lock(&lock)
        let all = entries
        entries = []
        held = 0
        pthread_mutex_unlock(&lock)
        all.forEach { free($0.pointer) }
    }
}
