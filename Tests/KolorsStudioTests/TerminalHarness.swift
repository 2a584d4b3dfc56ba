import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The suites that run real terminals (tmux, a pty, Xvfb + xterm) run one after another, so their
/// timings are not distorted by each other on a 2-core machine.
@Suite("Terminal end to end", .serialized)
struct TerminalEndToEnd {}

/// Paths and helpers shared by the end-to-end tests.
enum E2E {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var binary: String { repo.appendingPathComponent(".build/debug/kolors").path }

    static func tempDir(_ tag: String) -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-\(tag)-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Runs a command (PATH lookup), returns (status, stdout+stderr). Output goes through a file,
    /// not a pipe, so daemons it starts (the tmux server) cannot keep the read end open.
    @discardableResult
    static func run(_ args: [String], environment: [String: String]? = nil, timeout: Double = 20) -> (Int32, String) {
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent("kolors-e2e-out-\(UUID().uuidString)").path
        defer { unlink(outPath) }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&fa, 1, 2)
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        // children start with no blocked signals and default handlers, like from a shell
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        guard posix_spawnp(&pid, args[0], &fa, &attr, argv, envp) == 0 else { return (-1, "cannot start \(args[0])") }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 { break }
            if Date() > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                break
            }
            usleep(5_000)
        }
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        // WIFEXITED / WEXITSTATUS
        let code: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return (code, out)
    }

    /// Starts a command in the background (output to `log`); returns its pid.
    static func spawn(_ args: [String], environment: [String: String], log: String) -> pid_t? {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&fa, 1, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawnp(&pid, args[0], &fa, &attr, argv, envp) == 0 else { return nil }
        return pid
    }

    /// Stops a process started with `spawn` (TERM, then KILL) and reaps it.
    static func stop(_ pid: pid_t) {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
    }

    /// Shell-quotes a string.
    static func q(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

/// A private tmux server (unique socket) running one command in a detached session.
final class TmuxSession {
    let socket = "kolors-test-\(UUID().uuidString.prefix(12))"
    let width: Int
    let height: Int

    /// Starts `command` (a shell command line) in a `width`×`height` pane.
    init(command: String, width: Int = 120, height: Int = 40) throws {
        self.width = width
        self.height = height
        let (rc, out) = E2E.run(["tmux", "-u", "-L", socket, "-f", "/dev/null", "new-session", "-d", "-x", "\(width)", "-y", "\(height)",
                                 command])
        guard rc == 0 else { throw TmuxError(message: "tmux failed to start: \(out)") }
    }

    struct TmuxError: Error { var message: String }

    func tmux(_ args: String...) -> String { E2E.run(["tmux", "-L", socket] + args).1 }

    /// Named keys (tmux key names, e.g. "C-g", "Tab", "BTab", "F1", "Escape").
    func keys(_ names: String...) { _ = E2E.run(["tmux", "-L", socket, "send-keys"] + names) }

    /// Literal text.
    func type(_ text: String) { _ = E2E.run(["tmux", "-L", socket, "send-keys", "-l", text]) }

    /// Bracketed paste of `text` (as a terminal paste).
    func paste(_ text: String) {
        _ = E2E.run(["tmux", "-L", socket, "set-buffer", "-b", "kolors", text])
        _ = E2E.run(["tmux", "-L", socket, "paste-buffer", "-p", "-b", "kolors"])
    }

    func capture() -> String { E2E.run(["tmux", "-L", socket, "capture-pane", "-p"]).1 }

    /// Polls the screen until `predicate` holds; returns the last capture.
    @discardableResult
    func waitFor(_ what: String, timeout: Double = 10, _ predicate: (String) -> Bool) -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var screen = capture()
        while !predicate(screen) && Date() < deadline {
            usleep(50_000)
            screen = capture()
        }
        if !predicate(screen) { Issue.record("timed out waiting for \(what); screen:\n\(screen)") }
        return screen
    }

    @discardableResult
    func waitFor(text: String, timeout: Double = 10) -> String { waitFor("'\(text)'", timeout: timeout) { $0.contains(text) } }

    func kill() { _ = E2E.run(["tmux", "-L", socket, "kill-server"]) }

    deinit { kill() }
}
