import Synchronization

/// Thrown by long operations when their `CancellationToken` was cancelled.
public struct CancellationError: Error, CustomStringConvertible, Sendable {
    public init() {}
    public var description: String { "cancelled" }
}

/// A flag shared between whoever runs a long job (a background queue) and whoever may stop
/// it (the UI, a signal handler). The engine checks it between steps and inside long
/// operations so that a cancel lands within a fraction of a step.
public final class CancellationToken: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public func cancel() { flag.store(true, ordering: .relaxed) }

    public var isCancelled: Bool { flag.load(ordering: .relaxed) }

    /// Throws `CancellationError` when cancelled.
    public func check() throws {
        if isCancelled { throw CancellationError() }
    }
}
