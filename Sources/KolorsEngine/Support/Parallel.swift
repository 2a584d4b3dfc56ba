import COpenBLAS
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How many cores the engine uses: OpenBLAS's thread pool and our own element-wise loops.
public enum EngineThreads {
    private static let configured = Atomic<Int>(0)

    /// Cores available to this process.
    public static var available: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Current thread count (defaults to every available core).
    public static var count: Int {
        let c = configured.load(ordering: .relaxed)
        return c > 0 ? c : available
    }

    /// The most threads a command accepts: far more than any CPU here benefits from, and few
    /// enough that BLAS and the loop workers start promptly.
    public static let maximum = 256

    /// Sets the thread count for BLAS and element-wise loops (nil or ≤ 0: all cores). Front
    /// ends check user input against 1…`maximum` first; larger values are clamped here.
    public static func configure(_ n: Int?) {
        let value = min((n ?? 0) > 0 ? n! : available, maximum)
        configured.store(value, ordering: .relaxed)
        openblas_set_num_threads(Int32(value))
    }
}

/// Runs `body` over `0..<n` split into contiguous ranges, one per worker thread.
/// Work smaller than `grain` items per worker runs on the calling thread.
@inline(__always)
public func parallelFor(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    guard n > 0 else { return }
    let workers = min(EngineThreads.count, max(1, n / max(grain, 1)))
    if workers <= 1 {
        body(0..<n)
        return
    }
    let chunk = (n + workers - 1) / workers
    withoutActuallyEscaping(body) { body in
        // The closure is only used during this call, by threads that finish before it returns.
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = w * chunk
            let hi = min(n, lo + chunk)
            if lo < hi { shared.value(lo..<hi) }
        }
    }
}

/// Carries a value across a concurrency boundary the caller knows to be safe
/// (work that completes before the enclosing call returns).
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
