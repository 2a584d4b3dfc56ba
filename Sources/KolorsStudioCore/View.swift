import Foundation
import KolorsImageIO
import KolorsPipelines

/// Renders the state into a `Frame` (pure; the shell puts the frame on the terminal).
public enum StudioView {
    public static func render(_ s: StudioState) -> Frame {
        var f = Frame(width: s.width, height: s.height)
        let l = s.layout
        if l.tooSmall {
            drawTooSmall(&f, s)
            return f
        }
        drawTitle(&f, s, l)
        if let b = l.banner, let (text, kind) = s.bannerText {
            f.fill(b, role: kind == .error ? .error : .banner)
            let more = " …Ctrl-N"
            let shown = CellWidth.of(text) <= b.width - 2 ? text : String(CellWidth.prefix(text, fitting: b.width - 2 - CellWidth.of(more)).0) + more
            f.put(" " + shown, x: 0, y: b.y, role: kind == .error ? .error : .banner)
        }
        drawEditor(&f, s, .prompt, s.prompt, l.prompt)
        if l.negativeFolded { drawFoldedNegative(&f, s, l.negative) } else { drawEditor(&f, s, .negative, s.negative, l.negative) }
        drawParams(&f, s, l.params)
        if let p = l.preview { drawPreview(&f, s, p) }
        drawQueue(&f, s, l.queue)
        drawStatus(&f, s, l.status)
        if s.fullPreview && !s.galleryVisible {
            f.cursor = nil
            drawFullPreview(&f, s, l)
        }
        if s.galleryVisible {
            f.cursor = nil
            drawGallery(&f, s, l)
        }
        if s.helpVisible {
            f.cursor = nil
            drawHelp(&f, s, l)
        }
        if s.logVisible {
            f.cursor = nil
            drawLog(&f, s, l)
        }
        if let lp = s.linePrompt { drawLinePrompt(&f, lp, l) }
        if let q = s.confirmingQuit {
            f.cursor = nil
            drawQuitConfirmation(&f, q, s, l)
        }
        // images under an overlay are not shown (sixel would paint over the overlay)
        let covers = [s.helpVisible ? helpRect(s, l) : nil, s.linePrompt.map { linePromptRect($0, l) },
                      s.logVisible ? logRect(l) : nil, s.confirmingQuit.map { quitRect($0, l) }].compactMap { $0 }
        if !covers.isEmpty {
            f.images.removeAll { img in covers.contains { $0.intersects(img.rect) } }
        }
        return f
    }

    // MARK: pieces

    static func drawTooSmall(_ f: inout Frame, _ s: StudioState) {
        let lines = ["Terminal too small: \(s.width)×\(s.height)",
                     "Kolors Studio needs at least \(StudioLayout.minWidth)×\(StudioLayout.minHeight).",
                     "Enlarge the window, or Ctrl-Q to quit."]
        let top = max(0, (s.height - lines.count) / 2)
        for (i, line) in lines.enumerated() where top + i < s.height {
            let t = CellWidth.truncate(line, to: s.width)
            f.put(t, x: max(0, (s.width - CellWidth.of(t)) / 2), y: top + i, role: i == 0 ? .warning : .base)
        }
    }

    static func drawTitle(_ f: inout Frame, _ s: StudioState, _ l: StudioLayout) {
        f.fill(l.title, role: .titleBar)
        let x = f.put(" Kolors Studio ", x: 0, y: 0, role: .titleBar)
        let model: String
        switch s.generator {
        case .loading(let what, let frac):
            model = "loading: \(what)" + (frac.map { String(format: " %d%%", Int($0 * 100)) } ?? "")
        case .ready(let d, let demo): model = demo ? "\(d) [demo]" : d
        case .failed: model = "no engine"
        }
        // the key hint wins; the model name gets what is left
        let hint = KeyMap.hint
        let hintWidth = CellWidth.of(hint)
        let showHint = l.title.width - x - hintWidth - 2 >= 20
        let room = l.title.width - x - (showHint ? hintWidth + 3 : 10)
        if room > 4 { f.put("│ " + CellWidth.truncate(model, to: room - 2), x: x, y: 0, role: .titleBar) }
        if showHint {
            f.put(hint, x: l.title.width - hintWidth - 1, y: 0, role: .titleBar)
        } else {
            f.put("F1 help", x: l.title.width - 8, y: 0, role: .titleBar)
        }
    }

    /// The token counter on an editor's border; over the limit it says how many tokens are cut.
    /// `room`: cells available; over the limit a shorter form is used where the long one does not fit.
    public static func tokenNote(_ count: Int?, room: Int = .max) -> (String, StyleRole) {
        guard let count else { return ("tokens: n/a", .dim) }
        let max = GenerationParameters.maxPromptTokens
        if count > max {
            let forms = ["⚠ \(count)/\(max) tokens: last \(count - max) cut", "⚠ \(count)/\(max): \(count - max) cut", "⚠ \(count)/\(max)"]
            return (forms.first { CellWidth.of($0) <= room } ?? forms[2], .error)
        }
        return ("\(count)/\(max) tokens", count > max * 9 / 10 ? .warning : .hint)
    }

    /// The compact layout's negative prompt: one row (Tab unfolds it into a box).
    static func drawFoldedNegative(_ f: inout Frame, _ s: StudioState, _ r: Rect) {
        f.fill(r, role: .base)
        var x = f.put(" Negative ", x: r.x, y: r.y, role: .paneTitle, maxX: r.maxX)
        let (tokens, tokenRole) = tokenNote(s.negativeTokens)
        let showTokens = s.negativeTokens.map { $0 > GenerationParameters.maxPromptTokens } ?? false
        let right = showTokens ? CellWidth.of(tokens) + 2 : 0
        let text = s.negative.text.replacingOccurrences(of: "\n", with: " ⏎ ")
        let room = max(0, r.maxX - x - right - 1)
        if text.isEmpty {
            x = f.put(CellWidth.truncate("(none) · Tab to edit", to: room), x: x, y: r.y, role: .dim, maxX: r.maxX)
        } else {
            x = f.put(CellWidth.truncate(text, to: room), x: x, y: r.y, role: .value, maxX: r.maxX)
        }
        if showTokens { f.put(tokens, x: r.maxX - right + 1, y: r.y, role: tokenRole, maxX: r.maxX) }
    }

    static func drawEditor(_ f: inout Frame, _ s: StudioState, _ field: Field, _ e: TextEditor, _ r: Rect) {
        let focused = s.focus == field && !s.galleryVisible && !s.helpVisible && s.linePrompt == nil
        let title = field.label + (focused ? " ✎" : "")
        // the box draws the note right-aligned when it clears the title: " title " + a gap + " note "
        let tokens = tokenNote(field == .prompt ? s.promptTokens : s.negativeTokens, room: r.width - CellWidth.of(title) - 9)
        f.box(r, title: title, role: focused ? .focusBorder : .border,
              titleRole: focused ? .focusBorder : .paneTitle, topRight: tokens,
              bottom: focused ? ("Enter: new line · Tab: next field", .hint) : nil)
        let inner = r.inner
        guard inner.width > 0, inner.height > 0 else { return }
        let rows = e.visualRows(width: inner.width)
        let (crow, cx) = e.cursorVisual(rows: rows)
        let offset = max(0, crow - inner.height + 1)
        if e.isEmpty && !focused {
            f.put(field == .prompt ? "type a prompt (English or 中文)…" : "things to avoid (optional)…",
                  x: inner.x, y: inner.y, role: .dim, maxX: inner.maxX)
        }
        for i in 0..<inner.height where offset + i < rows.count {
            f.put(rows[offset + i].text, x: inner.x, y: inner.y + i, role: .value, maxX: inner.maxX)
        }
        if offset > 0 { f.put("↑", x: r.maxX - 1, y: inner.y, role: .hint) }
        if offset + inner.height < rows.count { f.put("↓", x: r.maxX - 1, y: inner.maxY - 1, role: .hint) }
        if focused { f.cursor = (inner.x + min(cx, inner.width - 1), inner.y + crow - offset) }
    }

    static func drawParams(_ f: inout Frame, _ s: StudioState, _ r: Rect) { ParamsPane.draw(&f, s, r) }

    static func drawPreview(_ f: inout Frame, _ s: StudioState, _ r: Rect) {
        let caption = s.preview?.caption ?? ""
        var progress: (String, StyleRole)?
        if let job = s.activeJob, job.phase != .running || !caption.hasPrefix("#\(job.id) ") {
            progress = (phaseText(job), job.phase == .cancelling ? .warning : .progress)
        }
        f.box(r, title: "Preview" + (caption.isEmpty ? "" : " · \(caption)"), role: .border, topRight: progress,
              bottom: (r.width >= 30 ? "\(s.previewMode) · Ctrl-F full view" : s.previewMode, .dim))
        drawPreviewContent(&f, s, r)
    }

    /// The preview over the overlay area (Ctrl-F): the live preview or the last image, as large as the screen allows.
    static func drawFullPreview(_ f: inout Frame, _ s: StudioState, _ l: StudioLayout) {
        let r = l.overlayArea
        f.images.removeAll()
        f.fill(r, role: .base)
        let caption = s.preview?.caption ?? ""
        var progress: (String, StyleRole)?
        if let job = s.activeJob { progress = (phaseText(job), job.phase == .cancelling ? .warning : .progress) }
        f.box(r, title: "Preview" + (caption.isEmpty ? "" : " · \(caption)") + (s.preview.map { " · \($0.image.width)×\($0.image.height)" } ?? ""),
              role: .focusBorder, titleRole: .focusBorder, topRight: progress, bottom: ("Ctrl-F or Esc: back · \(s.previewMode)", .hint))
        drawPreviewContent(&f, s, r)
    }

    static func drawPreviewContent(_ f: inout Frame, _ s: StudioState, _ r: Rect) {
        let inner = r.inner
        guard inner.width > 2, inner.height > 1 else { return }
        if s.previewMode == "none" {
            f.put("previews off (--preview none)", x: inner.x + 1, y: inner.y, role: .dim, maxX: inner.maxX)
            if let p = s.preview {
                f.put("\(p.caption): \(p.image.width)×\(p.image.height)", x: inner.x + 1, y: inner.y + 1, role: .hint, maxX: inner.maxX)
            }
            return
        }
        if let p = s.preview {
            f.images.append(ImagePlacement(rect: inner, source: .frame(p)))
        } else {
            let t = s.activeJob == nil ? "no image yet: type a prompt, Ctrl-G to generate" : "waiting for the first step…"
            let tt = CellWidth.truncate(t, to: inner.width - 2)
            f.put(tt, x: inner.x + max(1, (inner.width - CellWidth.of(tt)) / 2), y: inner.y + inner.height / 2, role: .dim,
                  maxX: inner.maxX)
        }
    }

    public static func phaseText(_ job: Job) -> String {
        switch job.phase {
        case .queued: "#\(job.id) queued"
        case .starting: "#\(job.id) starting"
        case .loading(let w, let fr): "#\(job.id) loading \(w)" + (fr.map { String(format: " %d%%", Int($0 * 100)) } ?? "")
        case .running: "#\(job.id) step \(job.step)/\(job.totalSteps)"
        case .decoding: "#\(job.id) decoding"
        case .saving: "#\(job.id) saving"
        case .cancelling: "#\(job.id) cancelling…"
        case .finished: "#\(job.id) done"
        case .cancelled: "#\(job.id) cancelled"
        case .failed: "#\(job.id) failed"
        case .unsaved: "#\(job.id) not saved"
        }
    }

    static func drawQueue(_ f: inout Frame, _ s: StudioState, _ r: Rect) {
        var x = f.put(" Jobs ", x: r.x, y: r.y, role: .label)
        if s.jobs.isEmpty {
            f.put("none yet: Ctrl-G queues a job with the current fields", x: x, y: r.y, role: .dim, maxX: r.maxX)
            return
        }
        // active first, then queued, then most recent done
        let active = s.jobs.filter { $0.phase.isActive }
        let queued = s.jobs.filter { $0.phase == .queued }
        let done = s.jobs.filter { $0.phase.isDone }.reversed()
        var items: [(String, StyleRole)] = []
        for j in active { items.append(("▶ " + phaseText(j) + adapterTag(j.parameters), j.phase == .cancelling ? .warning : .progress)) }
        for j in queued { items.append(("… #\(j.id) queued" + adapterTag(j.parameters), .hint)) }
        for j in done {
            switch j.phase {
            case .finished: items.append(("✓ #\(j.id) \(j.files.first ?? "")" + (j.files.count > 1 ? " +\(j.files.count - 1)" : "")
                                          + adapterTag(j.parameters), .success))
            case .cancelled: items.append(("✗ #\(j.id) cancelled", .warning))
            case .unsaved:
                let kept = s.unsaved.contains { $0.jobID == j.id }
                items.append((kept ? "! #\(j.id) not saved: Ctrl-S" : "✗ #\(j.id) not saved", .error))
            case .failed: items.append(("✗ #\(j.id) failed", .error))
            default: break
            }
        }
        for (i, (t, role)) in items.enumerated() {
            if i > 0 { x = f.put("  ", x: x, y: r.y, role: .base, maxX: r.maxX) }
            if x + CellWidth.of(t) > r.maxX - 1 {
                f.put("…", x: min(x, r.maxX - 1), y: r.y, role: .hint, maxX: r.maxX)
                break
            }
            x = f.put(t, x: x, y: r.y, role: role, maxX: r.maxX)
        }
    }

    /// What a job uses besides the prompt: " [IP 0.50 · LoRA×2]" (empty when nothing).
    public static func adapterTag(_ p: GenerationParameters) -> String {
        var parts: [String] = []
        if let ip = p.ipAdapter { parts.append("IP " + ParameterRules.formatWeight(ip.scale)) }
        if p.loras.count == 1 { parts.append("LoRA \(p.loras[0].name) \(ParameterRules.formatWeight(p.loras[0].weight))") }
        if p.loras.count > 1 { parts.append("LoRA×\(p.loras.count)") }
        return parts.isEmpty ? "" : " [" + parts.joined(separator: " · ") + "]"
    }

    public static func formatBytes(_ b: UInt64) -> String {
        let d = Double(b)
        if d >= 1_073_741_824 { return String(format: "%.2f GB", d / 1_073_741_824) }
        return String(format: "%.0f MB", d / 1_048_576)
    }

    public static func formatDuration(_ t: Double) -> String {
        let s = Int(t.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    static func drawStatus(_ f: inout Frame, _ s: StudioState, _ r: Rect) {
        f.fill(r, role: .status)
        var left: String
        switch s.generator {
        case .loading(let what, let frac):
            let pct = frac.map { Int($0 * 100) }
            let bar = pct.map { p in String(repeating: "█", count: p / 10) + String(repeating: "░", count: 10 - p / 10) } ?? "…"
            left = " loading model: \(what) \(bar)" + (pct.map { " \($0)%" } ?? "")
        case .ready(let d, _): left = " \(d)"
        case .failed: left = " no engine"
        }
        if let job = s.activeJob {
            // the running job wins the space (the model is in the title bar too)
            left = " " + phaseText(job)
            if job.phase == .running || job.phase == .cancelling, let sps = job.secondsPerStep {
                left += String(format: " · %.2f s/it", sps)
                if let eta = job.eta { left += " · ETA " + formatDuration(eta) }
            }
        }
        var right = ""
        if let rss = s.rssBytes { right += "RSS " + formatBytes(rss) + " " }
        // the idle model name is in the title bar too: a message gets the room
        let leftRoom = s.activeJob == nil && s.message != nil ? max(10, r.width / 3) : max(10, r.width / 2)
        let x = f.put(CellWidth.truncate(left, to: leftRoom), x: 0, y: r.y, role: .status, maxX: r.maxX)
        if let m = s.message {
            let role: StyleRole = switch m.kind { case .info: .status; case .success: .success; case .warning: .warning; case .error: .error }
            let avail = r.width - x - CellWidth.of(right) - 4
            if avail > 5 {
                // a message that does not fit says where to read the rest
                let more = " …Ctrl-N"
                let text = CellWidth.of(m.text) <= avail || avail < 20 ? CellWidth.truncate(m.text, to: avail)
                    : String(CellWidth.prefix(m.text, fitting: avail - CellWidth.of(more)).0) + more
                f.put(" │ " + text, x: x, y: r.y, role: role, maxX: r.maxX)
            }
        }
        if !right.isEmpty, r.width - CellWidth.of(right) > x { f.put(right, x: r.width - CellWidth.of(right), y: r.y, role: .status) }
    }

    // MARK: overlays

    /// Width of the key column in the help overlay.
    static var helpKeyWidth: Int { min(24, KeyMap.sections.flatMap(\.bindings).map { CellWidth.of($0.keys) }.max() ?? 12) }

    /// The help overlay as wanted on a wide terminal: every line whole.
    static var helpNaturalWidth: Int {
        let actions = KeyMap.sections.flatMap(\.bindings).map { CellWidth.of($0.action) }.max() ?? 40
        let titles = KeyMap.sections.map { CellWidth.of($0.title) + 1 }.max() ?? 0
        return max(2 + helpKeyWidth + 1 + actions, titles) + 4
    }

    /// The help text laid out for an inner width: (key, text, is a section title); actions that do
    /// not fit wrap onto lines of their own under the action column.
    public static func helpLines(width: Int) -> [(String, String, Bool)] {
        let keyWidth = helpKeyWidth
        let actionWidth = max(10, width - 3 - keyWidth - 1)
        var lines: [(String, String, Bool)] = []
        for (title, bindings) in KeyMap.sections {
            if !lines.isEmpty { lines.append(("", "", false)) }
            lines.append((title, "", true))
            for b in bindings {
                let wrapped = CellWidth.wrap(b.action, width: actionWidth)
                for (i, t) in wrapped.enumerated() { lines.append((i == 0 ? b.keys : "", t, false)) }
            }
        }
        return lines
    }

    static func helpRect(_ s: StudioState, _ l: StudioLayout) -> Rect {
        let width = min(helpNaturalWidth, l.overlayArea.width - 2)
        return l.centred(width: width, height: helpLines(width: width - 2).count + 4)
    }

    static func drawHelp(_ f: inout Frame, _ s: StudioState, _ l: StudioLayout) {
        let r = helpRect(s, l)
        f.fill(r, role: .overlay)
        let inner = r.inner
        let lines = helpLines(width: inner.width)
        let maxScroll = max(0, lines.count - (inner.height - 1))
        let scroll = min(s.helpScroll, maxScroll)
        f.box(r, title: "Help · every key", role: .focusBorder, titleRole: .focusBorder,
              bottom: (maxScroll > 0 ? "↑/↓ scroll · Esc or F1 close" : "Esc or F1 close", .hint))
        let keyWidth = helpKeyWidth
        for (i, line) in lines.dropFirst(scroll).enumerated() where i < inner.height - 1 {
            let y = inner.y + 1 + i
            if line.2 {
                f.put(line.0, x: inner.x + 1, y: y, role: .paneTitle, maxX: inner.maxX)
            } else {
                f.put(line.0, x: inner.x + 2, y: y, role: .key, maxX: inner.x + 2 + keyWidth)
                f.put(line.1, x: inner.x + 3 + keyWidth, y: y, role: .overlay, maxX: inner.maxX)
            }
        }
    }

    /// The dialog's note (an error, or Tab's candidates) wrapped into at most three rows.
    static func linePromptNote(_ lp: LinePrompt, width: Int) -> [String] {
        guard let note = lp.note else { return [] }
        let lines = CellWidth.wrap((note.isError ? "✗ " : "") + note.text, width: max(4, width))
        return lines.count > 3 ? Array(lines.prefix(2)) + [CellWidth.truncate(lines[2...].joined(separator: " "), to: width)] : lines
    }

    static func linePromptRect(_ lp: LinePrompt, _ l: StudioLayout) -> Rect {
        let width = min(80, l.overlayArea.width - 2)
        return l.centred(width: width, height: 3 + linePromptNote(lp, width: width - 2).count)
    }

    static func drawLinePrompt(_ f: inout Frame, _ lp: LinePrompt, _ l: StudioLayout) {
        let r = linePromptRect(lp, l)
        f.fill(r, role: .overlay)
        f.box(r, title: lp.title, role: .focusBorder, titleRole: .focusBorder,
              bottom: (lp.busy ? "reading…" : "Tab completes · Enter · Esc closes", .hint))
        let inner = r.inner
        let (_, cx) = lp.editor.cursorVisual(width: 100_000)
        let skip = max(0, cx - inner.width + 2)
        var shown = "", skipped = 0, w = 0
        for c in lp.editor.text {
            let cw = CellWidth.of(c)
            if skipped < skip { skipped += cw; continue }
            if w + cw > inner.width - 1 { break }
            shown.append(c); w += cw
        }
        f.put(shown, x: inner.x, y: inner.y, role: .overlay, maxX: inner.maxX)
        for (i, line) in linePromptNote(lp, width: inner.width).enumerated() {
            f.put(line, x: inner.x, y: inner.y + 1 + i, role: lp.note?.isError == true ? .error : .hint, maxX: inner.maxX)
        }
        f.cursor = (inner.x + cx - skipped, inner.y)
    }

    // MARK: message log

    static func logRect(_ l: StudioLayout) -> Rect {
        l.centred(width: min(110, l.overlayArea.width - 2), height: l.overlayArea.height)
    }

    /// The message log's lines for an inner width: every message, oldest first, long ones wrapped.
    public static func logLines(_ s: StudioState, width: Int) -> [(String, StyleRole)] {
        var out: [(String, StyleRole)] = []
        for m in s.messageLog {
            let role: StyleRole = switch m.kind { case .info: .overlay; case .success: .success; case .warning: .warning; case .error: .error }
            let stamp = formatDuration(m.posted) + "  "
            let rows = CellWidth.wrap(m.text, width: max(4, width - CellWidth.of(stamp)))
            for (i, t) in rows.enumerated() {
                out.append(((i == 0 ? stamp : String(repeating: " ", count: CellWidth.of(stamp))) + t, role))
            }
        }
        return out
    }

    static func drawLog(_ f: inout Frame, _ s: StudioState, _ l: StudioLayout) {
        let r = logRect(l)
        f.fill(r, role: .overlay)
        let inner = r.inner
        let lines = logLines(s, width: inner.width - 1)
        let rows = max(1, inner.height)
        let maxScroll = max(0, lines.count - rows)
        let scroll = min(s.logScroll, maxScroll)
        f.box(r, title: "Messages · \(s.messageLog.count)", role: .focusBorder, titleRole: .focusBorder,
              bottom: (maxScroll > 0 ? "↑/↓ PgUp/PgDn scroll · Esc or Ctrl-N close" : "Esc or Ctrl-N close", .hint))
        if lines.isEmpty {
            f.put("no messages yet", x: inner.x + 1, y: inner.y, role: .dim, maxX: inner.maxX)
            return
        }
        let start = lines.count - rows - scroll
        for (i, line) in lines[max(0, start)..<(lines.count - scroll)].enumerated() {
            f.put(line.0, x: inner.x + 1, y: inner.y + i, role: line.1, maxX: inner.maxX)
        }
    }

    // MARK: quit confirmation

    static func quitLines(_ q: QuitConfirmation, _ s: StudioState) -> [String] {
        var lines: [String] = []
        if let id = q.running, let job = s.jobs.first(where: { $0.id == id }) { lines.append("\(phaseText(job)): it stops, nothing is saved") }
        if q.queued > 0 { lines.append("\(q.queued) queued job\(q.queued == 1 ? "" : "s") will not run") }
        if q.unsaved > 0 { lines.append("\(q.unsaved) unsaved image\(q.unsaved == 1 ? "" : "s") will be lost (n, then Ctrl-S saves)") }
        return lines
    }

    static func quitRect(_ q: QuitConfirmation, _ l: StudioLayout) -> Rect {
        l.centred(width: 64, height: 6 + [q.running != nil, q.queued > 0, q.unsaved > 0].filter { $0 }.count)
    }

    static func drawQuitConfirmation(_ f: inout Frame, _ q: QuitConfirmation, _ s: StudioState, _ l: StudioLayout) {
        let r = quitRect(q, l)
        f.fill(r, role: .overlay)
        f.box(r, title: "Quit Kolors Studio?", role: .focusBorder, titleRole: .focusBorder)
        let inner = r.inner
        var y = inner.y + 1
        for line in quitLines(q, s) {
            f.put("• " + line, x: inner.x + 1, y: y, role: .warning, maxX: inner.maxX)
            y += 1
        }
        f.put("y: quit · any other key: stay", x: inner.x + 1, y: y + 1, role: .key, maxX: inner.maxX)
    }

    static func drawGallery(_ f: inout Frame, _ s: StudioState, _ l: StudioLayout) {
        let g = s.gallery
        let geo = GalleryGeometry.compute(l)
        f.images.removeAll()        // the gallery covers the preview pane
        f.fill(geo.box, role: .base)
        let name = (g.sessionPath as NSString).lastPathComponent
        let count = g.indexing && g.entries.isEmpty ? "reading…" : g.entries.isEmpty ? "empty" : "\(g.selected + 1)/\(g.entries.count)"
        let readOnly = g.problem != nil ? " · read-only" : ""
        f.box(geo.box, title: "Gallery · session \(name) · \(count)\(readOnly)", role: .focusBorder, titleRole: .focusBorder,
              bottom: ("←/→ select · Enter full view · r reload params · f favourite · d delete · o sessions · Esc close", .hint))
        if g.pickingSession {
            drawSessionPicker(&f, g, geo)
            return
        }
        if g.entries.isEmpty {
            let text = g.indexing ? "Reading the session's images…"
                : g.problem != nil ? "No images in this session; new ones cannot be saved here (o opens another session)."
                : "No images in this session yet. Ctrl-G generates; o opens another session."
            f.put(text, x: geo.grid.x + 1, y: geo.grid.y + 1, role: .dim, maxX: geo.grid.maxX)
            if let problem = g.problem {
                f.put(problem, x: geo.grid.x + 1, y: geo.grid.y + 2, role: .warning, maxX: geo.grid.maxX)
            }
        } else if g.fullView, let e = g.selectedEntry {
            f.images.append(ImagePlacement(rect: geo.grid, source: .file((g.sessionPath as NSString).appendingPathComponent(e.file))))
        } else {
            let start = geo.pageStart(selected: g.selected)
            for i in start..<min(g.entries.count, start + geo.pageSize) {
                guard let tr = geo.thumbRect(index: i, pageStart: start) else { continue }
                let e = g.entries[i]
                let selected = i == g.selected
                f.images.append(ImagePlacement(rect: tr, source: .file((g.sessionPath as NSString).appendingPathComponent(e.file))))
                let label = (e.favourite ? "★ " : "") + e.file.replacingOccurrences(of: ".png", with: "")
                f.fill(Rect(x: tr.x, y: tr.maxY, width: tr.width, height: 1), role: selected ? .selection : .base)
                f.put(CellWidth.truncate(label, to: tr.width), x: tr.x, y: tr.maxY, role: selected ? .selection : .label,
                      maxX: tr.maxX)
            }
        }
        drawDetails(&f, g, geo)
    }

    static func drawDetails(_ f: inout Frame, _ g: GalleryState, _ geo: GalleryGeometry) {
        let d = geo.details
        guard d.width > 4, d.height > 1, let e = g.selectedEntry else { return }
        var y = d.y
        func line(_ text: String, _ role: StyleRole) {
            guard y < d.maxY else { return }
            f.put(CellWidth.truncate(text, to: d.width), x: d.x, y: y, role: role, maxX: d.maxX)
            y += 1
        }
        if g.confirmingDelete {
            line("Delete \(e.file)? y = yes, any other key = no", .error)
        }
        let p = e.parameters
        line((e.favourite ? "★ " : "") + e.file + (e.foreign ? " (read from PNG)" : ""), .paneTitle)
        // wrap the prompt over a few lines
        let wrapped = TextEditor(p.prompt).visualRows(width: max(2, d.width)).map(\.text)
        for t in wrapped.prefix(max(1, d.height / 3)) { line(t, .value) }
        if !p.negativePrompt.isEmpty { line("− " + p.negativePrompt.replacingOccurrences(of: "\n", with: " "), .hint) }
        line("\(p.width)×\(p.height) · \(p.steps) steps · CFG \(ImageMetadata.formatFloat(p.guidance))", .label)
        line("seed \(p.seed) · \(p.scheduler)" + (p.imagesPerPrompt > 1 ? " · #\(e.batchIndex + 1)/\(p.imagesPerPrompt)" : ""), .label)
        if let ii = p.initImage { line("img2img \(ii) · strength \(ImageMetadata.formatFloat(p.strength))", .label) }
        if let ip = p.ipAdapter {
            line("IP-Adapter \((ip.image as NSString).lastPathComponent) · scale \(ParameterRules.formatWeight(ip.scale))", .label)
        }
        if !p.loras.isEmpty {
            line("LoRAs " + p.loras.map { "\($0.name) \(ParameterRules.formatWeight($0.weight))" }.joined(separator: ", "), .label)
        }
        if let secs = e.seconds { line(String(format: "%.1f s", secs) + (e.created.map { " · \($0)" } ?? ""), .dim) }
        line("model \(p.model)", .dim)
    }

    static func drawSessionPicker(_ f: inout Frame, _ g: GalleryState, _ geo: GalleryGeometry) {
        let r = geo.box.inner
        f.put("Open a session (↑/↓, Enter; Esc back)", x: r.x + 1, y: r.y, role: .paneTitle, maxX: r.maxX)
        if g.sessions.isEmpty {
            f.put("no sessions found", x: r.x + 1, y: r.y + 2, role: .dim, maxX: r.maxX)
            return
        }
        let visible = r.height - 2
        let start = max(0, g.sessionSelected - visible + 1)
        for (k, info) in g.sessions.dropFirst(start).prefix(visible).enumerated() {
            let i = start + k
            let current = info.path == g.sessionPath ? " (open)" : ""
            let text = CellWidth.pad(" \(info.name)  \(info.imageCount) image(s)\(current)", to: r.width - 2)
            f.put(text, x: r.x + 1, y: r.y + 2 + k, role: i == g.sessionSelected ? .selection : .value, maxX: r.maxX)
        }
    }
}
