/// A key press, decoded from the terminal's input.
public enum Key: Equatable, Sendable, Hashable {
    /// A printable character (grapheme cluster).
    case character(Character)
    /// Ctrl + a letter ("a"…"z"), for control bytes that have no named key below.
    case ctrl(Character)
    /// Alt (Meta) + a character, sent by terminals as ESC followed by the character.
    case alt(Character)
    case enter, tab, backTab, backspace, delete, escape, insert
    case up, down, left, right, home, end, pageUp, pageDown
    case ctrlLeft, ctrlRight, ctrlUp, ctrlDown, ctrlHome, ctrlEnd, ctrlDelete, altBackspace
    case function(Int)
}

/// What the input decoder produces.
public enum InputEvent: Equatable, Sendable {
    case key(Key)
    /// Text pasted with bracketed paste (ESC [ 200 ~ … ESC [ 201 ~).
    case paste(String)
}

/// One item read from the terminal: a Unicode scalar, or a key ncurses already decoded.
public enum RawInput: Equatable, Sendable {
    case scalar(UInt32)
    case key(Key)
}

/// Turns raw input into keys and pastes: control bytes become ctrl keys, ESC followed by more
/// input in the same read batch is Alt+key or the start of a bracketed paste, a lone ESC is
/// Escape. Pastes may span batches.
public struct InputDecoder: Sendable {
    private var pasting = false
    private var pasteBuffer: [Unicode.Scalar] = []
    public init() {}

    public var isPasting: Bool { pasting }

    public mutating func feed(_ batch: [RawInput]) -> [InputEvent] {
        var out: [InputEvent] = []
        var text = ""            // consecutive printable scalars, grouped into clusters
        func flushText() {
            for c in text { out.append(.key(.character(c))) }
            text = ""
        }
        var i = 0
        let endPaste: [UInt32] = [27, 91, 50, 48, 49, 126]     // ESC [ 2 0 1 ~
        let startPaste: [UInt32] = [27, 91, 50, 48, 48, 126]   // ESC [ 2 0 0 ~
        func matches(_ seq: [UInt32], at j: Int) -> Bool {
            guard j + seq.count <= batch.count else { return false }
            for (k, v) in seq.enumerated() { if batch[j + k] != .scalar(v) { return false } }
            return true
        }
        while i < batch.count {
            if pasting {
                if matches(endPaste, at: i) {
                    pasting = false
                    var s = String.UnicodeScalarView()
                    s.append(contentsOf: pasteBuffer)
                    out.append(.paste(String(s)))
                    pasteBuffer = []
                    i += endPaste.count
                    continue
                }
                if case .scalar(let v) = batch[i], let u = Unicode.Scalar(v) { pasteBuffer.append(u) }
                else if case .key(.enter) = batch[i] { pasteBuffer.append("\n") }
                i += 1
                continue
            }
            switch batch[i] {
            case .key(let k):
                flushText()
                out.append(.key(k))
                i += 1
            case .scalar(let v):
                if v == 27 {
                    flushText()
                    if matches(startPaste, at: i) {
                        pasting = true
                        i += startPaste.count
                        continue
                    }
                    if i + 1 < batch.count {
                        switch batch[i + 1] {
                        case .scalar(127), .scalar(8): out.append(.key(.altBackspace)); i += 2; continue
                        case .scalar(let n) where n >= 32 && n != 127:
                            if let u = Unicode.Scalar(n) { out.append(.key(.alt(Character(u)))) }
                            i += 2; continue
                        default: break
                        }
                    }
                    out.append(.key(.escape))
                    i += 1
                    continue
                }
                if let k = Self.controlKey(v) {
                    flushText()
                    out.append(.key(k))
                } else if let u = Unicode.Scalar(v), v >= 32 {
                    text.unicodeScalars.append(u)
                }
                i += 1
            }
        }
        flushText()
        return out
    }

    /// Keys for C0 control bytes and DEL.
    public static func controlKey(_ v: UInt32) -> Key? {
        switch v {
        case 9: return .tab
        case 10, 13: return .enter
        case 8, 127: return .backspace
        case 0: return nil
        case 1...26: return .ctrl(Character(Unicode.Scalar(v + 96)!))
        case 28...31: return nil
        default: return nil
        }
    }
}

/// One line of the help overlay.
public struct KeyBinding: Equatable, Sendable {
    public var keys: String
    public var action: String
    public init(_ keys: String, _ action: String) { self.keys = keys; self.action = action }
}

/// Every key the studio understands, grouped for the help overlay (F1).
public enum KeyMap {
    public static let sections: [(title: String, bindings: [KeyBinding])] = [
        ("Everywhere", [
            KeyBinding("Ctrl-G", "generate with the current fields (queues when busy)"),
            KeyBinding("Esc", "cancel the running job (closes overlays first)"),
            KeyBinding("Ctrl-X", "drop the queued jobs that have not started"),
            KeyBinding("Ctrl-F", "full-screen preview / last image (again or Esc: back)"),
            KeyBinding("Ctrl-O", "gallery of this session (again: close)"),
            KeyBinding("Ctrl-P", "load all parameters from a PNG (ours or A1111-style); Tab completes the path"),
            KeyBinding("Ctrl-S", "save images the session could not take into another folder"),
            KeyBinding("Ctrl-N", "message log: every message and warning in full"),
            KeyBinding("F1", "this help (again or Esc: close)"),
            KeyBinding("F2", "next colour theme"),
            KeyBinding("Ctrl-L", "redraw the screen"),
            KeyBinding("Ctrl-Z", "suspend to the shell (fg resumes)"),
            KeyBinding("Ctrl-Q", "quit (Ctrl-C too); asks first while jobs run or wait, or images are unsaved"),
        ]),
        ("Fields", [
            KeyBinding("Tab / Shift-Tab", "next / previous field"),
            KeyBinding("←/→  -/+", "change a value (steps, CFG, size preset, sampler …)"),
            KeyBinding("PgUp / PgDn", "change a value in big steps"),
            KeyBinding("0-9 . x", "type a value; Enter or Tab applies it"),
            KeyBinding("r / l / Space", "seed: new random seed / lock / toggle lock"),
            KeyBinding("s", "size: swap width and height; typed sizes are multiples of 8, 8…4096"),
            KeyBinding("Space", "images: batch seeds shared (diffusers) / seed+i (A1111)"),
        ]),
        ("Reference image and LoRAs (Tab to them)", [
            KeyBinding("Reference image", "type or paste a PNG path; Enter or Tab checks it (needs --ip-adapter)"),
            KeyBinding("IP scale ←/→", "image prompt strength 0…2 in 0.05 steps; 0 = off"),
            KeyBinding("LoRAs: a, Insert", "add a LoRA: .safetensors path or name[:weight]"),
            KeyBinding("LoRAs: d, Del", "remove the selected LoRA"),
            KeyBinding("LoRAs: ←/→  PgUp/PgDn", "weight ∓0.05 / ∓0.5 (−2…2); or type 0.8 and Enter"),
            KeyBinding("LoRAs: ↑/↓", "select a LoRA (past the ends: the next field)"),
            KeyBinding("LoRAs: Ctrl-↑/↓, [ ]", "move the selected LoRA up / down"),
        ]),
        ("Prompt editors", [
            KeyBinding("arrows Home End", "move (Home/End twice: line start/end)"),
            KeyBinding("Ctrl-←/→", "move by word"),
            KeyBinding("Ctrl-Home/End", "start / end of the text"),
            KeyBinding("Enter", "new line"),
            KeyBinding("Backspace / Del", "delete a character"),
            KeyBinding("Ctrl-W, Alt-Backspace", "delete the previous word"),
            KeyBinding("Alt-D, Ctrl-Del", "delete the next word"),
            KeyBinding("Ctrl-U / Ctrl-K", "delete to line start / end"),
            KeyBinding("paste", "long text is fine (bracketed paste)"),
        ]),
        ("Gallery (Ctrl-O)", [
            KeyBinding("arrows / n p", "select (next / previous)"),
            KeyBinding("Enter", "full view on/off"),
            KeyBinding("r", "reload all parameters of the image into the editor"),
            KeyBinding("f", "favourite on/off"),
            KeyBinding("d, Del", "delete (asks y/n)"),
            KeyBinding("o", "open a previous session"),
            KeyBinding("Esc, Ctrl-O", "close"),
        ]),
    ]

    /// The short hint shown in the title bar.
    public static let hint = "F1 help · Ctrl-G generate · Esc cancel · Ctrl-O gallery · Ctrl-Q quit"
}
