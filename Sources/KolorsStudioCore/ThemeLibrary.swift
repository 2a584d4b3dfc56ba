import Foundation

/// Finds `*.theme` files in a list of folders (earlier folders win) plus the built-in dark theme.
public struct ThemeLibrary: Sendable {
    public var directories: [String]
    public init(directories: [String]) { self.directories = directories }

    /// Usual places: `$XDG_CONFIG_HOME/kolors-studio/themes` (or ~/.config/…), `themes/` next to the
    /// repository the binary was built in (…/.build/<config>/kolors → …/themes), `../share/kolors-studio/themes`
    /// next to an installed binary, and `./themes`.
    public static func standard(executable: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> ThemeLibrary {
        var dirs: [String] = []
        if let x = environment["XDG_CONFIG_HOME"], x.hasPrefix("/") { dirs.append("\(x)/kolors-studio/themes") } else if let h = environment["HOME"] {
            dirs.append("\(h)/.config/kolors-studio/themes")
        }
        // absolute, symlinks resolved (…/.build/debug is a link to …/.build/x86_64-…/debug)
        var exe = URL(fileURLWithPath: executable, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        exe = exe.standardizedFileURL.resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<4 where dir.path != "/" {
            dirs.append(dir.appendingPathComponent("themes").path)
            dir = dir.deletingLastPathComponent()
        }
        dirs.append(exe.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("share/kolors-studio/themes").path)
        dirs.append(FileManager.default.currentDirectoryPath + "/themes")
        var seen = Set<String>()
        return ThemeLibrary(directories: dirs.filter { !$0.isEmpty && seen.insert($0).inserted })
    }

    /// Theme names available (sorted; "dark" is always there).
    public func names() -> [String] {
        var names = Set(["dark"])
        for d in directories {
            for f in (try? FileManager.default.contentsOfDirectory(atPath: d)) ?? [] where f.hasSuffix(".theme") {
                names.insert(String(f.dropLast(".theme".count)))
            }
        }
        // dark, light, high-contrast first, then the rest alphabetically
        let preferred = ["dark", "light", "high-contrast"]
        return preferred.filter(names.contains) + names.subtracting(preferred).sorted()
    }

    /// Loads a theme by name or by path to a `.theme` file.
    public func load(_ nameOrPath: String) throws -> Theme {
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".theme") {
            guard let text = try? String(contentsOfFile: nameOrPath, encoding: .utf8) else {
                throw ThemeError(line: 0, message: "cannot read \(nameOrPath)")
            }
            return try Theme.parse(text)
        }
        for d in directories {
            let p = (d as NSString).appendingPathComponent(nameOrPath + ".theme")
            if let text = try? String(contentsOfFile: p, encoding: .utf8) {
                do { return try Theme.parse(text) } catch let e as ThemeError {
                    throw ThemeError(line: e.line, message: "\(p): \(e.message)")
                }
            }
        }
        if nameOrPath == "dark" { return Theme.builtinDark }
        throw ThemeError(line: 0, message: "no theme named '\(nameOrPath)' (have: \(names().joined(separator: ", ")))")
    }
}
