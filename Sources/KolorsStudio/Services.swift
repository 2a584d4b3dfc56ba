import CNcursesw
import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsPipelines
import KolorsStudioCore

/// Things background work tells the UI thread.
enum ShellEvent: Sendable {
    case action(Action)
    case sessionOpened(GallerySession, GalleryLoadReport)
    /// An image the screen waits for finished loading: repaint.
    case imageReady
}

/// A thread-safe inbox drained by the UI loop.
final class Mailbox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [ShellEvent] = []
    func post(_ e: ShellEvent) { lock.withLock { items.append(e) } }
    func post(_ a: Action) { post(.action(a)) }
    func drain() -> [ShellEvent] {
        lock.withLock {
            let out = items
            items = []
            return out
        }
    }
}

/// Loads gallery PNGs in the background (downscaled for display) and caches them.
final class ImageStore: @unchecked Sendable {
    private let lock = NSLock()
    private var cache: [String: RGBImage] = [:]
    private var order: [String] = []
    private var loading = Set<String>()
    private var failed = Set<String>()
    private let queue = DispatchQueue(label: "kolors.studio.images", qos: .utility)
    private let mailbox: Mailbox
    static let maxSide = 768

    init(mailbox: Mailbox) { self.mailbox = mailbox }

    /// The image if loaded; otherwise starts loading it and returns nil.
    func image(_ path: String) -> RGBImage? {
        lock.lock()
        defer { lock.unlock() }
        if let img = cache[path] { return img }
        if loading.contains(path) || failed.contains(path) { return nil }
        loading.insert(path)
        queue.async { [self] in
            let img = try? PNGFile.read(path).image
            let small = img.map { i in
                i.width > Self.maxSide || i.height > Self.maxSide
                    ? LatentPreview.fit(i, maxWidth: Self.maxSide, maxHeight: Self.maxSide) : i
            }
            lock.withLock {
                loading.remove(path)
                if let small {
                    cache[path] = small
                    order.append(path)
                    if order.count > 64 { cache[order.removeFirst()] = nil }
                } else {
                    failed.insert(path)
                }
            }
            mailbox.post(.imageReady)
        }
        return nil
    }

    func hasFailed(_ path: String) -> Bool { lock.withLock { failed.contains(path) } }

    func forget(_ path: String) {
        lock.withLock {
            cache[path] = nil
            failed.remove(path)
        }
    }
}

/// Owns the generator and runs jobs on a background queue, one at a time.
final class GenerationService: @unchecked Sendable {
    private let queue = DispatchQueue(label: "kolors.studio.generation", qos: .userInitiated)
    private let lock = NSLock()
    private var generator: (any ImageGenerator)?
    private var tokens: [Int: CancellationToken] = [:]
    private let mailbox: Mailbox

    init(mailbox: Mailbox) { self.mailbox = mailbox }

    var current: (any ImageGenerator)? { lock.withLock { generator } }

    /// Makes the generator in the background; progress and the result arrive as actions.
    func load(factory: @escaping GeneratorFactory, request: GeneratorRequest) {
        let mailbox = self.mailbox
        queue.async { [self] in
            do {
                let g = try factory(request) { event in
                    if case .loading(let what, let f) = event { mailbox.post(.generatorStatus(.loading(what, fraction: f))) }
                }
                lock.withLock { generator = g }
                mailbox.post(.generatorStatus(.ready(description: g.modelDescription, isDemo: g.isDemo)))
            } catch {
                mailbox.post(.generatorStatus(.failed("\(error)")))
            }
        }
    }

    func start(_ job: Job, session: GallerySession) {
        let token = CancellationToken()
        lock.withLock { tokens[job.id] = token }
        let mailbox = self.mailbox
        queue.async { [self] in
            // the UI thread wins when both want the CPU (engine worker threads are the engine's business)
            kc_nice_this_thread(5)
            defer { kc_nice_this_thread(-5) }
            defer { _ = lock.withLock { tokens.removeValue(forKey: job.id) } }
            guard let g = current else {
                mailbox.post(.jobFailed(jobID: job.id, message: "the generator is not ready"))
                return
            }
            let t0 = Date()
            let images: [RGBImage]
            do {
                try token.check()
                images = try g.generateBatch(job.parameters, cancel: token) { event in
                    mailbox.post(.generation(jobID: job.id, event))
                }
            } catch is CancellationError {
                mailbox.post(.jobCancelled(jobID: job.id))
                return
            } catch {
                mailbox.post(.jobFailed(jobID: job.id, message: "\(error)"))
                return
            }
            // A cancel that arrives after the images are made does not throw them away, and neither
            // does a session that cannot store them: those are kept in memory (Ctrl-S saves them elsewhere).
            let seconds = Date().timeIntervalSince(t0)
            let created = ISO8601DateFormatter().string(from: Date())
            // a job queued before its LoRA's hash arrived still records it (A1111 "Lora hashes")
            var parameters = job.parameters
            for k in parameters.loras.indices where parameters.loras[k].hash == nil {
                parameters.loras[k].hash = try? LoRALibrary.shortHash(path: parameters.loras[k].path)
            }
            var entries: [GalleryEntry] = []
            var unsaved: [UnsavedImage] = []
            var failure: String?
            for (i, img) in images.enumerated() {
                var record = ImageRecord(parameters: parameters.forBatchImage(i), batchIndex: i, created: created,
                                         seconds: (seconds * 10).rounded() / 10)
                record.precision = g.computePrecision
                if failure == nil {
                    do {
                        entries.append(try session.add(image: img, record: record))
                        continue
                    } catch {
                        failure = "\(error)"
                    }
                }
                unsaved.append(UnsavedImage(jobID: job.id, image: img, record: record))
            }
            if let failure {
                mailbox.post(.jobSaveFailed(jobID: job.id, saved: entries, unsaved: unsaved, message: failure))
            } else {
                mailbox.post(.jobSaved(jobID: job.id, entries: entries, final: images.first))
            }
        }
    }

    func cancel(_ id: Int) { lock.withLock { tokens[id] }?.cancel() }

    func cancelAll() { lock.withLock { Array(tokens.values) }.forEach { $0.cancel() } }

    /// Waits until queued work finished, at most `timeout` seconds.
    func drain(timeout: Double) -> Bool {
        let done = DispatchSemaphore(value: 0)
        queue.async { done.signal() }
        return done.wait(timeout: .now() + timeout) == .success
    }
}
