import Foundation
import KolorsImageIO
import KolorsPipelines

/// The parameters pane: the classic value fields, then the IP-Adapter reference image (with a
/// thumbnail) and its scale, then the LoRA list. Rows that do not fit scroll so that the focused
/// field (or the selected LoRA) is always visible.
public enum ParamsPane {
    /// Cells of the reference thumbnail (half blocks: 2 pixel rows per cell row).
    public static let thumbWidth = 10
    public static let thumbHeight = 3

    /// Whether the reference thumbnail is drawn (a checked, readable reference and previews on).
    public static func showsThumbnail(_ s: StudioState) -> Bool {
        guard s.ipAdapter != nil, s.previewMode != "none", case .ok(let path, _, _) = s.ipImageStatus else { return false }
        return path == s.ipImagePath
    }

    /// The error line under the reference image, if any.
    public static func referenceError(_ s: StudioState) -> String? {
        guard s.ipAdapter != nil, case .failed(let path, let why) = s.ipImageStatus, path == s.ipImagePath else { return nil }
        return "✗ \(why): \((path as NSString).lastPathComponent)"
    }

    /// Whether the IP-Adapter section is folded into one row (compact layout, adapter off).
    static func ipFolded(_ s: StudioState, compact: Bool) -> Bool { compact && s.ipAdapter == nil }

    /// Rows of the IP-Adapter section: reference, [error], scale (3 rows with the thumbnail beside it);
    /// one row when folded.
    static func ipRows(_ s: StudioState, compact: Bool = false) -> Int {
        if ipFolded(s, compact: compact) { return 1 }
        return 1 + (referenceError(s) != nil ? 1 : 0) + (showsThumbnail(s) ? thumbHeight : 1)
    }

    /// Rows beyond the classic rows the pane would like (IP-Adapter section, LoRA list).
    public static func extraRows(_ s: StudioState, compact: Bool = false) -> Int { ipRows(s, compact: compact) + 1 + s.loras.count }

    /// Classic rows (the value fields before the IP-Adapter section).
    static func classicRows(compact: Bool) -> Int { compact ? StudioLayout.compactParamRows : StudioLayout.paramRows }

    /// Row span (first, last) that must be visible for the focused field.
    static func focusRows(_ s: StudioState, compact: Bool = false) -> (Int, Int) {
        let ipStart = classicRows(compact: compact)
        let folded = ipFolded(s, compact: compact)
        let scaleRow = folded ? ipStart : ipStart + 1 + (referenceError(s) != nil ? 1 : 0)
        let loraHeader = ipStart + ipRows(s, compact: compact)
        switch s.focus {
        case .prompt, .negative, .steps, .guidance, .images: return (0, 0)
        case .seed: return (1, 1)
        case .size: return (2, 2)
        case .scheduler: return (3, 3)
        case .strength: return compact ? (4, 4) : (3, 3)
        case .initImage: return compact ? (5, 5) : (4, 4)
        case .ipImage: return (ipStart, max(ipStart, scaleRow - 1))
        case .ipScale: return (ipStart, loraHeader - 1)
        case .loras:
            if s.loras.isEmpty { return (loraHeader, loraHeader) }
            let row = loraHeader + 1 + min(max(0, s.loraSelected), s.loras.count - 1)
            return (s.loraSelected == 0 ? loraHeader : row, row)
        }
    }

    /// The first row shown when `visible` rows fit: the least scroll that shows the focused rows.
    public static func scrollOffset(_ s: StudioState, visible: Int, compact: Bool = false) -> Int {
        let total = classicRows(compact: compact) + extraRows(s, compact: compact)
        guard total > visible, visible > 0 else { return 0 }
        let (first, last) = focusRows(s, compact: compact)
        var offset = max(0, last - visible + 1)
        offset = min(offset, first)
        return min(max(0, offset), total - visible)
    }

    static func hint(_ s: StudioState) -> String {
        switch s.focus {
        case .steps: "←/→ change · type a number"
        case .images: "←/→ change · Space: batch seeds shared / seed+i"
        case .guidance, .strength: "←/→ change · type 4.5"
        case .seed: "r random · l lock · Space toggle · type digits"
        case .size: "←/→ preset · s swap · type 832x1216"
        case .scheduler: "←/→ or Space: next sampler"
        case .initImage: "path of a PNG for img2img; empty = text-to-image"
        case .ipImage:
            s.ipAdapter == nil ? "IP-Adapter off: use --ip-adapter PATH" : "PNG path · Enter checks · Ctrl-U clears"
        case .ipScale: "←/→ ±0.05 · type 0.6 · 0 = off"
        case .loras:
            s.loras.isEmpty ? "a: add a LoRA (path[:weight])" : "a add · d remove · ←/→ weight · [ ] move"
        case .prompt, .negative: ""
        }
    }

    // MARK: drawing

    private struct Row {
        var draw: (inout Frame, Int) -> Void
    }

    static func draw(_ f: inout Frame, _ s: StudioState, _ r: Rect) {
        let focusIsValue = s.focus.isParameter
        let active = !s.galleryVisible && !s.helpVisible && s.linePrompt == nil
        let compact = s.layout.compact
        f.box(r, title: "Parameters", role: focusIsValue && active ? .focusBorder : .border,
              titleRole: focusIsValue && active ? .focusBorder : .paneTitle,
              bottom: focusIsValue && active ? (hint(s), .hint) : nil)
        let inner = r.inner
        guard inner.height >= 1, inner.width > 10 else { return }

        func value(_ field: Field, _ text: String) -> (String, StyleRole) {
            let focused = s.focus == field && active
            if focused, let input = s.fieldInput { return (input + "▏", .focusValue) }
            return (text, focused ? .focusValue : .value)
        }
        var x = inner.x
        func item(_ f: inout Frame, _ field: Field, _ text: String, y: Int, note: String? = nil, noteRole: StyleRole = .hint) {
            x = f.put(field.label + " ", x: x, y: y, role: .label, maxX: inner.maxX)
            let (t, role) = value(field, text)
            x = f.put(" " + t + " ", x: x, y: y, role: role, maxX: inner.maxX)
            if let note { x = f.put(" " + note, x: x, y: y, role: noteRole, maxX: inner.maxX) }
            x += compact ? 2 : 3
        }
        let p = s.params
        var rows: [Row] = []
        rows.append(Row { f, y in
            x = inner.x
            item(&f, .steps, "\(p.steps)", y: y)
            item(&f, .guidance, ImageMetadata.formatFloat(p.guidance), y: y)
            // seed+i batches say so (the default, one seed for the batch as diffusers, says nothing)
            item(&f, .images, "\(p.imagesPerPrompt)", y: y, note: p.batchSeeds == .increment ? "seed+i" : nil)
        })
        rows.append(Row { f, y in
            x = inner.x
            item(&f, .seed, "\(p.seed)", y: y, note: s.seedLocked ? "locked" : "new each run")
        })
        rows.append(Row { f, y in
            x = inner.x
            item(&f, .size, "\(p.width)×\(p.height)", y: y, note: SizePreset(p.width, p.height).aspectLabel)
        })
        let strengthNote: (Int) -> String? = { right in s.initImage.isEmpty && inner.maxX - right > 36 ? "(img2img only)" : nil }
        if compact {
            // the narrower pane: Strength on a row of its own
            rows.append(Row { f, y in
                x = inner.x
                item(&f, .scheduler, p.scheduler, y: y)
            })
            rows.append(Row { f, y in
                x = inner.x
                item(&f, .strength, ImageMetadata.formatFloat(p.strength), y: y, note: s.initImage.isEmpty ? "img2img only" : nil)
            })
        } else {
            rows.append(Row { f, y in
                x = inner.x
                item(&f, .scheduler, p.scheduler, y: y)
                item(&f, .strength, ImageMetadata.formatFloat(p.strength), y: y, note: strengthNote(x))
            })
        }
        rows.append(Row { f, y in
            pathEditor(&f, s, .initImage, s.initImage, y: y, inner: inner, active: active,
                       empty: ("(none: text-to-image)", .dim))
        })

        // IP-Adapter: reference image, error line, scale (beside the thumbnail); one row while off in the compact layout
        if ipFolded(s, compact: compact) {
            rows.append(Row { f, y in
                let focused = (s.focus == .ipImage || s.focus == .ipScale) && active
                let lx = f.put("IP-Adapter ", x: inner.x, y: y, role: .label, maxX: inner.maxX)
                f.put(" off: --ip-adapter PATH", x: lx, y: y, role: focused ? .focusValue : .dim, maxX: inner.maxX)
                if focused { f.cursor = nil }
            })
        } else {
            rows.append(Row { f, y in
                if s.ipAdapter == nil {
                    let focused = s.focus == .ipImage && active
                    let lx = f.put(Field.ipImage.label + " ", x: inner.x, y: y, role: .label, maxX: inner.maxX)
                    f.put(" off: needs --ip-adapter PATH", x: lx, y: y, role: focused ? .focusValue : .dim, maxX: inner.maxX)
                    if focused { f.cursor = nil }
                } else {
                    pathEditor(&f, s, .ipImage, s.ipImage, y: y, inner: inner, active: active,
                               empty: ("(none: type a PNG path)", .dim))
                }
            })
            if let error = referenceError(s) {
                rows.append(Row { f, y in f.put("  " + error, x: inner.x, y: y, role: .error, maxX: inner.maxX) })
            }
            let scaleNote: String = {
                if s.ipAdapter == nil { return "(IP-Adapter off)" }
                if s.ipScale == 0 { return "off" }
                return "0 = off"
            }()
            if showsThumbnail(s), case .ok(let path, let w, let h) = s.ipImageStatus {
                let tx = inner.x + thumbWidth + 2
                rows.append(Row { f, y in
                    x = tx
                    item(&f, .ipScale, ParameterRules.formatWeight(s.ipScale), y: y, note: scaleNote)
                })
                rows.append(Row { f, y in f.put("\(w)×\(h) PNG", x: tx, y: y, role: .dim, maxX: inner.maxX) })
                rows.append(Row { f, y in
                    let name = CellWidth.truncate((path as NSString).lastPathComponent, to: max(0, inner.maxX - tx))
                    f.put(name, x: tx, y: y, role: .dim, maxX: inner.maxX)
                })
            } else {
                rows.append(Row { f, y in
                    x = inner.x
                    var note = scaleNote
                    if s.ipAdapter != nil, s.previewMode == "none", case .ok(let path, let w, let h) = s.ipImageStatus, path == s.ipImagePath {
                        note += " · reference \(w)×\(h)"
                    }
                    item(&f, .ipScale, ParameterRules.formatWeight(s.ipScale), y: y, note: note)
                })
            }
        }

        // LoRAs
        let loraFocused = s.focus == .loras && active
        rows.append(Row { f, y in
            x = inner.x
            x = f.put(Field.loras.label + " ", x: x, y: y, role: .label, maxX: inner.maxX)
            if s.loras.isEmpty {
                f.put(" none · a: add a .safetensors", x: x, y: y, role: loraFocused ? .focusValue : .dim, maxX: inner.maxX)
            } else {
                let missing = s.unusableLoRAs.count
                let text = " \(s.loras.count)" + (missing > 0 ? " (\(missing) not used)" : "")
                x = f.put(text, x: x, y: y, role: missing > 0 ? .warning : .value, maxX: inner.maxX)
                if inner.maxX - x > 22 { f.put("   a add · d remove", x: x, y: y, role: .hint, maxX: inner.maxX) }
            }
        })
        let nameWidth = min(max(8, s.loras.map { CellWidth.of($0.name) }.max() ?? 8), max(6, inner.width - 24))
        for (i, e) in s.loras.enumerated() {
            rows.append(Row { f, y in
                let selected = i == min(s.loraSelected, s.loras.count - 1)
                let focused = loraFocused && selected
                var lx = f.put(focused ? " ▸ " : "   ", x: inner.x, y: y, role: focused ? .focusValue : .hint, maxX: inner.maxX)
                let nameRole: StyleRole = e.isUsable ? (focused ? .focusValue : .value) : .dim
                lx = f.put(CellWidth.pad(e.name, to: nameWidth), x: lx, y: y, role: nameRole, maxX: inner.maxX)
                let weight: String
                if focused, let input = s.fieldInput { weight = input + "▏" } else { weight = ParameterRules.formatWeight(e.settings.weight) }
                lx = f.put("  " + CellWidth.pad(weight, to: 5) + "  ", x: lx, y: y, role: focused ? .focusValue : .value, maxX: inner.maxX)
                let (note, role): (String, StyleRole) = switch e.status {
                case .checking: ("checking…", .hint)
                case .ready:
                    if let rec = e.recordedHash, let h = e.settings.hash, rec.lowercased() != h.lowercased() {
                        ("\(h) ≠ image's", .warning)
                    } else {
                        (e.settings.hash ?? "", .dim)
                    }
                case .missing: ("not found", .error)
                case .failed(let why): ("✗ " + why, .error)
                }
                f.put(note, x: lx, y: y, role: role, maxX: inner.maxX)
            })
        }

        let visible = inner.height
        let offset = scrollOffset(s, visible: visible, compact: compact)
        for (k, row) in rows.enumerated() where k >= offset && k < offset + visible {
            row.draw(&f, inner.y + k - offset)
        }
        // the thumbnail sits beside the scale row and the two below it; drawn only when all three show
        if showsThumbnail(s), case .ok(let path, _, _) = s.ipImageStatus {
            let first = classicRows(compact: compact) + 1 + (referenceError(s) != nil ? 1 : 0)
            if first >= offset, first + thumbHeight <= offset + visible {
                let rect = Rect(x: inner.x, y: inner.y + first - offset, width: thumbWidth, height: thumbHeight)
                f.images.append(ImagePlacement(rect: rect, source: .file(path)))
            }
        }
        if offset > 0 { f.put("↑", x: r.maxX - 1, y: inner.y, role: .hint) }
        if offset + visible < rows.count { f.put("↓", x: r.maxX - 1, y: inner.maxY - 1, role: .hint) }
    }

    /// A single-line path editor row: the label, then the path (its end visible when unfocused,
    /// scrolled to the cursor when focused).
    static func pathEditor(_ f: inout Frame, _ s: StudioState, _ field: Field, _ editor: TextEditor, y: Int, inner: Rect,
                           active: Bool, empty: (String, StyleRole)) {
        var x = f.put(field.label + " ", x: inner.x, y: y, role: .label, maxX: inner.maxX)
        let focused = s.focus == field && active
        let avail = inner.maxX - x - 1
        if editor.isEmpty && !focused {
            f.put(" " + empty.0, x: x, y: y, role: empty.1, maxX: inner.maxX)
            return
        }
        let text = editor.text
        f.fill(Rect(x: x, y: y, width: max(0, avail + 1), height: 1), role: focused ? .focusValue : .base)
        if !focused {
            // show the end of a long path (the file name matters most)
            var shown = text
            if CellWidth.of(text) > avail - 1 {
                let tail = String(text.reversed())
                shown = "…" + String(CellWidth.prefix(tail, fitting: max(0, avail - 2)).0.reversed())
            }
            x = f.put(" " + shown, x: x, y: y, role: .value, maxX: inner.maxX)
            return
        }
        let (_, cx) = editor.cursorVisual(width: 100_000)
        // keep the cursor visible: scroll the text left when it does not fit
        let skip = max(0, cx - avail + 2)
        var shown = "", w = 0, skipped = 0
        for c in text {
            let cw = CellWidth.of(c)
            if skipped < skip { skipped += cw; continue }
            if w + cw > avail - 1 { break }
            shown.append(c); w += cw
        }
        f.put(" " + shown, x: x, y: y, role: .focusValue, maxX: inner.maxX)
        f.cursor = (min(inner.maxX - 1, x + 1 + cx - skipped), y)
    }
}
