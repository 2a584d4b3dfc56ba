import Foundation

/// `~` and `~/…` → the home folder: paths typed by users (flags, the studio's dialogs) and stored
/// in records. The one place they are expanded.
public func expandingTilde(_ path: String) -> String {
    (path as NSString).expandingTildeInPath
}
