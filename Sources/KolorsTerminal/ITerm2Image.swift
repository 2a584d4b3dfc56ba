import Foundation

/// iTerm2's inline images (`ESC ] 1337 ; File = <arguments> : <base64 file> BEL`): iTerm2,
/// WezTerm, VS Code's terminal, Konsole, mintty, Tabby. The file is a PNG; the terminal scales it
/// into `columns`×`rows` cells keeping its aspect ratio.
public enum ITerm2Image {
    /// The sequence showing `png` inline over `columns`×`rows` cells at the cursor.
    /// `doNotMoveCursor=1` is WezTerm's extension (others ignore it; callers save and restore the
    /// cursor around the sequence anyway).
    public static func sequence(png: [UInt8], columns: Int, rows: Int, name: String = "kolors-preview.png") -> [UInt8] {
        let args = "name=\(Data(name.utf8).base64EncodedString());size=\(png.count);width=\(max(1, columns));height=\(max(1, rows))"
            + ";preserveAspectRatio=1;inline=1;doNotMoveCursor=1"
        var out = Array("\u{1B}]1337;File=\(args):".utf8)
        out += Array(Data(png).base64EncodedData())
        out.append(0x07)
        return out
    }
}

/// Wrapping escape sequences so a multiplexer hands them to the terminal outside it.
public enum Passthrough {
    /// tmux's DCS passthrough (needs `set -g allow-passthrough on`, tmux ≥ 3.3):
    /// `ESC P tmux; <payload with every ESC doubled> ESC \`.
    public static func tmux(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = Array("\u{1B}Ptmux;".utf8)
        out.reserveCapacity(payload.count + payload.count / 64 + 16)
        for b in payload {
            if b == 0x1B { out.append(0x1B) }
            out.append(b)
        }
        out += [0x1B, 0x5C]
        return out
    }
}
