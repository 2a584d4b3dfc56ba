import Foundation

/// Finds a Kolors checkpoint from what a user types: a diffusers folder, a Hugging Face cache
/// folder (`models--Kwai-Kolors--Kolors-diffusers`, whose `snapshots/<rev>/` files are symlinks
/// into `blobs/`), or a repository id resolved against `$HF_HOME` / `~/.cache/huggingface/hub`.
public enum ModelLocator {
    public static let defaultRepository = "Kwai-Kolors/Kolors-diffusers"

    /// The Hugging Face hub cache folders to search, in order.
    public static func cacheDirectories(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var dirs: [String] = []
        if let c = environment["HF_HUB_CACHE"] ?? environment["HUGGINGFACE_HUB_CACHE"] { dirs.append(c) }
        if let h = environment["HF_HOME"] { dirs.append((h as NSString).appendingPathComponent("hub")) }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let xdg = environment["XDG_CACHE_HOME"] ?? (home as NSString).appendingPathComponent(".cache")
        dirs.append((xdg as NSString).appendingPathComponent("huggingface/hub"))
        var seen = Set<String>()
        return dirs.filter { seen.insert($0).inserted }
    }

    /// Resolves `spec` to a folder holding `model_index.json`.
    public static func resolve(_ spec: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let fm = FileManager.default
        let expanded = expandingTilde(spec)
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: expanded, isDirectory: &isDir) {
            guard isDir.boolValue else { throw CheckpointError("\(spec): not a folder (pass the folder that holds model_index.json)") }
            if fm.fileExists(atPath: expanded + "/model_index.json") { return expanded }
            if fm.fileExists(atPath: expanded + "/snapshots") { return try snapshot(in: expanded) }
            if let child = try? fm.contentsOfDirectory(atPath: expanded).first(where: { $0.hasPrefix("models--") }),
               fm.fileExists(atPath: expanded + "/" + child + "/snapshots") {
                return try snapshot(in: expanded + "/" + child)
            }
            throw CheckpointError("\(spec): no model_index.json here; expected a diffusers folder such as a download of \(defaultRepository)")
        }
        // A repository id: Org/Name.
        let parts = spec.split(separator: "/")
        if parts.count == 2, !spec.hasPrefix("."), !spec.hasPrefix("/") {
            let folder = "models--\(parts[0])--\(parts[1])"
            let searched = cacheDirectories(environment: environment)
            for cache in searched {
                let candidate = (cache as NSString).appendingPathComponent(folder)
                if fm.fileExists(atPath: candidate + "/snapshots") { return try snapshot(in: candidate) }
            }
            throw CheckpointError("\(spec) is not in the Hugging Face cache (looked in \(searched.joined(separator: ", "))); download it first or pass its folder")
        }
        throw CheckpointError("\(spec): no such folder")
    }

    /// The snapshot a cache folder's `refs/main` names, else the newest complete snapshot.
    static func snapshot(in repo: String) throws -> String {
        let fm = FileManager.default
        let snapshots = repo + "/snapshots"
        if let data = try? RegularFile.read(repo + "/refs/main", maxBytes: 4096), let ref = String(data: data, encoding: .utf8) {
            let rev = ref.trimmingCharacters(in: .whitespacesAndNewlines)
            let dir = snapshots + "/" + rev
            if !rev.isEmpty, !rev.contains("/"), fm.fileExists(atPath: dir + "/model_index.json") { return dir }
        }
        let revs = (try? fm.contentsOfDirectory(atPath: snapshots)) ?? []
        let complete = revs.map { snapshots + "/" + $0 }.filter { fm.fileExists(atPath: $0 + "/model_index.json") }
        let newest = complete.max { a, b in
            let da = (try? fm.attributesOfItem(atPath: a)[.modificationDate] as? Date) ?? .distantPast
            let db = (try? fm.attributesOfItem(atPath: b)[.modificationDate] as? Date) ?? .distantPast
            return da < db
        }
        guard let newest else {
            throw CheckpointError("\(repo): no snapshot with a model_index.json (is the download complete?)")
        }
        return newest
    }
}
