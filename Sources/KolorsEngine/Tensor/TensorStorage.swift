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
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            fatalError("out of memory allocating \(bytes) bytes for a tensor")
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        if zeroed { memset(raw, 0, bytes) }
        TensorStorage.accounting.allocated(bytes)
    }

    deinit {
        free(pointer)
        TensorStorage.accounting.freed(max(count, 1) * MemoryLayout<Float>.stride)
    }

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
