import Dispatch
import Foundation

/// Wall time per kind of operation, for `kolors bench`'s breakdown. Off by default; when off,
/// `measure` costs one branch.
public final class OpProfiler: @unchecked Sendable {
    public static let shared = OpProfiler()

    private let lock = NSLock()
    private var seconds: [String: Double] = [:]
    private var calls: [String: Int] = [:]
    public var enabled = false

    @inline(__always)
    public func measure<T>(_ kind: String, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer {
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            lock.lock()
            seconds[kind, default: 0] += dt
            calls[kind, default: 0] += 1
            lock.unlock()
        }
        return try body()
    }

    public func reset() {
        lock.lock()
        seconds = [:]
        calls = [:]
        lock.unlock()
    }

    /// (kind, seconds, calls), slowest first.
    public var report: [(kind: String, seconds: Double, calls: Int)] {
        lock.lock(); defer { lock.unlock() }
        return seconds.map { ($0.key, $0.value, calls[$0.key] ?? 0) }.sorted { $0.seconds > $1.seconds }
    }
}
