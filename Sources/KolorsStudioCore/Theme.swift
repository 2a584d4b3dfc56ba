import Foundation

/// A colour as a theme names it.
public enum ThemeColor: Equatable, Sendable, Hashable {
    /// The terminal's own default foreground/background.
    case terminalDefault
    /// One of the 16 ANSI colours (0–7 normal, 8–15 bright).
    case ansi(Int)
    /// An xterm 256-colour index.
    case indexed(Int)
    case rgb(UInt8, UInt8, UInt8)

    static let names = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"]

    /// xterm's RGB for a 256-colour index.
    public static func xtermRGB(_ i: Int) -> (Int, Int, Int) {
        let base16: [(Int, Int, Int)] = [
            (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
            (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
        ]
        if i < 16 { return base16[max(0, i)] }
        if i < 232 {
            let levels = [0, 95, 135, 175, 215, 255]
            let n = i - 16
            return (levels[n / 36], levels[(n / 6) % 6], levels[n % 6])
        }
        let g = 8 + (i - 232) * 10
        return (g, g, g)
    }

    public var rgbValue: (Int, Int, Int)? {
        switch self {
        case .terminalDefault: nil
        case .ansi(let i), .indexed(let i): ThemeColor.xtermRGB(i)
        case .rgb(let r, let g, let b): (Int(r), Int(g), Int(b))
        }
    }
}

public enum TextAttribute: String, CaseIterable, Sendable, Hashable {
    case bold, dim, underline, reverse, italic
}

/// Foreground, background and attributes of one role.
public struct ThemeStyle: Equatable, Sendable {
    public var foreground: ThemeColor
    public var background: ThemeColor?
    public var attributes: Set<TextAttribute>
    public init(foreground: ThemeColor = .terminalDefault, background: ThemeColor? = nil, attributes: Set<TextAttribute> = []) {
        self.foreground = foreground
        self.background = background
        self.attributes = attributes
    }
}

/// What a piece of the screen is; themes give each role a style.
public enum StyleRole: String, CaseIterable, Sendable, Hashable {
    case base, border, focusBorder = "focus-border", paneTitle = "pane-title", titleBar = "title-bar"
    case label, value, focusValue = "focus-value", hint, key, status, banner
    case error, warning, success, selection, dim, overlay, progress
}

/// A colour style resolved for a terminal: colour numbers ncurses understands (-1 = default).
public struct ResolvedStyle: Equatable, Sendable, Hashable {
    public var foreground: Int
    public var background: Int
    public var attributes: Set<TextAttribute>
    public init(foreground: Int, background: Int, attributes: Set<TextAttribute>) {
        self.foreground = foreground
        self.background = background
        self.attributes = attributes
    }
}

public struct ThemeError: Error, CustomStringConvertible, Sendable, Equatable {
    public var line: Int
    public var message: String
    public var description: String { line > 0 ? "theme line \(line): \(message)" : "theme: \(message)" }
}

/// A studio colour theme. Text format (see themes/README.md):
/// ```
/// # comment
/// name = Dark
/// base = #d8dee9 on #1b1e24
/// focus-border = bright-cyan bold
/// selection = black on #88c0d0
/// ```
public struct Theme: Equatable, Sendable {
    public var name: String
    public var styles: [StyleRole: ThemeStyle]

    public init(name: String, styles: [StyleRole: ThemeStyle]) {
        self.name = name
        self.styles = styles
    }

    public func style(_ role: StyleRole) -> ThemeStyle {
        styles[role] ?? styles[.base] ?? ThemeStyle()
    }

    // MARK: parsing

    public static func parse(_ text: String) throws -> Theme {
        var name = ""
        var styles: [StyleRole: ThemeStyle] = [:]
        for (index, raw) in text.components(separatedBy: "\n").enumerated() {
            let lineNo = index + 1
            var line = raw
            // "# " (hash, then a space or the line end) starts a comment; "#rrggbb" is a colour
            let chars = Array(line)
            for i in chars.indices where chars[i] == "#" && (i + 1 == chars.count || chars[i + 1].isWhitespace) {
                line = String(chars[..<i])
                break
            }
            line = line.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else {
                throw ThemeError(line: lineNo, message: "expected 'key = value'")
            }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if key == "name" {
                name = value
                continue
            }
            guard let role = StyleRole(rawValue: key) else {
                throw ThemeError(line: lineNo, message: "unknown role '\(key)' (known: \(StyleRole.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            styles[role] = try parseStyle(value, line: lineNo)
        }
        guard !name.isEmpty else { throw ThemeError(line: 0, message: "missing 'name = …'") }
        guard styles[.base] != nil else { throw ThemeError(line: 0, message: "missing 'base = …'") }
        return Theme(name: name, styles: styles)
    }

    static func parseStyle(_ value: String, line: Int) throws -> ThemeStyle {
        var words = value.split(separator: " ").map { String($0).lowercased() }
        var style = ThemeStyle()
        var colours: [ThemeColor] = []
        var sawOn = false
        while !words.isEmpty {
            let w = words.removeFirst()
            if w == "on" {
                guard colours.count <= 1, !sawOn else { throw ThemeError(line: line, message: "misplaced 'on'") }
                if colours.isEmpty { colours.append(.terminalDefault) }
                sawOn = true
                continue
            }
            if let a = TextAttribute(rawValue: w) {
                style.attributes.insert(a)
                continue
            }
            guard let c = parseColor(w) else { throw ThemeError(line: line, message: "unknown colour or attribute '\(w)'") }
            colours.append(c)
            if colours.count > 2 || (colours.count == 2 && !sawOn) {
                throw ThemeError(line: line, message: "write 'FOREGROUND on BACKGROUND'")
            }
        }
        if sawOn && colours.count < 2 { throw ThemeError(line: line, message: "'on' needs a background colour") }
        if let f = colours.first { style.foreground = f }
        if colours.count == 2 { style.background = colours[1] }
        return style
    }

    public static func parseColor(_ w: String) -> ThemeColor? {
        let w = w.lowercased()
        if w == "default" { return .terminalDefault }
        if w.hasPrefix("#") {
            let hex = w.dropFirst()
            guard hex.count == 6, let v = UInt32(hex, radix: 16) else { return nil }
            return .rgb(UInt8(v >> 16), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF))
        }
        if w.hasPrefix("color"), let n = Int(w.dropFirst(5)), (0...255).contains(n) { return .indexed(n) }
        if let i = ThemeColor.names.firstIndex(of: w) { return .ansi(i) }
        if w == "gray" || w == "grey" { return .ansi(8) }
        for prefix in ["bright-", "bright"] where w.hasPrefix(prefix) {
            if let i = ThemeColor.names.firstIndex(of: String(w.dropFirst(prefix.count))) { return .ansi(i + 8) }
        }
        return nil
    }

    // MARK: degrading to what the terminal has

    /// Resolves a role for a terminal with `colors` colours (ncurses' COLORS: 0/2 = monochrome,
    /// 8, 16, 256, or 2^24 for direct colour). Missing backgrounds inherit `base`'s.
    public func resolve(_ role: StyleRole, colors: Int) -> ResolvedStyle {
        let s = style(role)
        let bg = s.background ?? style(.base).background ?? .terminalDefault
        var attrs = s.attributes
        if colors < 8 {
            // monochrome: roles that depend on colour fall back to attributes
            switch role {
            case .selection, .titleBar, .banner, .focusValue: attrs.insert(.reverse)
            case .focusBorder, .paneTitle, .error, .key: attrs.insert(.bold)
            case .hint, .dim: attrs.insert(.dim)
            default: break
            }
            return ResolvedStyle(foreground: -1, background: -1, attributes: attrs)
        }
        let (f, fBright) = Theme.colorNumber(s.foreground, colors: colors)
        let (b, _) = Theme.colorNumber(bg, colors: colors)
        if fBright { attrs.insert(.bold) }
        var fg = f
        if fg == b && fg >= 0 {
            // degraded into the same colour: keep the text readable
            fg = b == 0 ? 7 : 0
        }
        if colors < 256, fg >= 0, b >= 0, Theme.contrast(foreground: fg, background: b, bold: attrs.contains(.bold), colors: colors) < Theme.minimumContrast {
            // few colours: the nearest palette colour can lose its contrast (yellow or green text on
            // a light background, bold black shown as grey on the yellow banner): black or white instead
            let black = Theme.contrast(foreground: 0, background: b, bold: false, colors: colors)
            let white = Theme.contrast(foreground: 7, background: b, bold: attrs.contains(.bold), colors: colors)
            if black >= white {
                fg = 0
                attrs.remove(.bold)
            } else {
                fg = 7
            }
        }
        return ResolvedStyle(foreground: fg, background: b, attributes: attrs)
    }

    /// The least contrast (WCAG ratio, 1…21) text keeps on terminals with 8 or 16 colours.
    public static let minimumContrast = 3.0

    /// WCAG contrast ratio of a palette foreground on a palette background as xterm shows them;
    /// with 8 colours bold text is drawn in the bright colour.
    public static func contrast(foreground: Int, background: Int, bold: Bool, colors: Int) -> Double {
        func luminance(_ i: Int) -> Double {
            let (r, g, b) = ThemeColor.xtermRGB(i)
            func lin(_ v: Int) -> Double {
                let c = Double(v) / 255
                return c <= 0.03928 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4)
            }
            return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
        }
        let shown = colors < 16 && bold && foreground < 8 ? foreground + 8 : foreground
        let (a, c) = (luminance(shown), luminance(background))
        return (max(a, c) + 0.05) / (min(a, c) + 0.05)
    }

    /// The colour number for `colors` colours, and whether a bright colour became bold (8 colours).
    public static func colorNumber(_ c: ThemeColor, colors: Int) -> (Int, Bool) {
        switch c {
        case .terminalDefault: return (-1, false)
        case .ansi(let i):
            if colors >= 16 { return (i, false) }
            return (i % 8, i >= 8)
        case .indexed(let i):
            if colors >= 256 && colors < 1 << 24 { return (i, false) }
            if colors >= 1 << 24 {
                if i < 8 { return (i, false) }
                let (r, g, b) = ThemeColor.xtermRGB(i)
                return (r << 16 | g << 8 | b, false)
            }
            return nearestANSI(ThemeColor.xtermRGB(i), colors: colors)
        case .rgb(let r, let g, let b):
            if colors >= 1 << 24 {
                let v = Int(r) << 16 | Int(g) << 8 | Int(b)
                // values below 8 are ANSI colours in direct-colour terminfo; nudge pure near-black
                return (v < 8 ? 8 : v, false)
            }
            if colors >= 256 { return (nearestXterm256(Int(r), Int(g), Int(b)), false) }
            return nearestANSI((Int(r), Int(g), Int(b)), colors: colors)
        }
    }

    /// Perceptual-ish distance ("redmean").
    static func distance(_ a: (Int, Int, Int), _ b: (Int, Int, Int)) -> Int {
        let rm = (a.0 + b.0) / 2
        let dr = a.0 - b.0, dg = a.1 - b.1, db = a.2 - b.2
        return (((512 + rm) * dr * dr) >> 8) + 4 * dg * dg + (((767 - rm) * db * db) >> 8)
    }

    /// The ANSI colour for an RGB colour on 16- (or 8-) colour terminals. Distances in RGB
    /// would turn the muted colours themes like (#bf616a, #88c0d0) into greys, so this goes by
    /// hue: unsaturated colours become black / grey / white by brightness, the rest the nearest of
    /// the six ANSI hues, bright when light. With 8 colours a bright colour maps to its base
    /// colour plus bold.
    static func nearestANSI(_ c: (Int, Int, Int), colors: Int) -> (Int, Bool) {
        let r = Double(c.0) / 255, g = Double(c.1) / 255, b = Double(c.2) / 255
        let mx = max(r, g, b), mn = min(r, g, b)
        let v = mx, s = mx > 0 ? (mx - mn) / mx : 0
        var index: Int
        if s < 0.22 || v < 0.18 {
            index = v < 0.3 ? 0 : v < 0.62 ? 8 : v < 0.9 ? 7 : 15
        } else {
            var h: Double
            let d = mx - mn
            if mx == r { h = (g - b) / d } else if mx == g { h = 2 + (b - r) / d } else { h = 4 + (r - g) / d }
            h *= 60
            if h < 0 { h += 360 }
            // hue sectors: red 0°, yellow 60°, green 120°, cyan 180°, blue 240°, magenta 300°
            let sector = Int((h / 60).rounded()) % 6
            index = [1, 3, 2, 6, 4, 5][sector]
            if v >= 0.8 && s < 0.9 || v >= 0.95 { index += 8 }
        }
        if colors >= 16 { return (index, false) }
        // Grey on 8 colours: white text, or black for dark greys.
        if index == 8 { return (v > 0.45 ? 7 : 0, false) }
        return (index % 8, index >= 8)
    }

    /// Nearest xterm-256 colour (6×6×6 cube or grey ramp).
    public static func nearestXterm256(_ r: Int, _ g: Int, _ b: Int) -> Int {
        func level(_ v: Int) -> Int { v < 48 ? 0 : v < 115 ? 1 : (v - 35) / 40 }
        let levels = [0, 95, 135, 175, 215, 255]
        let (lr, lg, lb) = (level(r), level(g), level(b))
        let cube = 16 + 36 * lr + 6 * lg + lb
        let cubeRGB = (levels[lr], levels[lg], levels[lb])
        let avg = (r + g + b) / 3
        let gi = avg > 238 ? 23 : max(0, (avg - 3) / 10)
        let grey = 232 + min(23, gi)
        let greyV = 8 + 10 * min(23, gi)
        return distance((r, g, b), cubeRGB) <= distance((r, g, b), (greyV, greyV, greyV)) ? cube : grey
    }

    // MARK: built-in

    /// The default theme, built in so the studio works without its themes folder (same text as themes/dark.theme).
    public static let builtinDarkText = """
    # Kolors Studio — dark (the default theme)
    name = dark
    base = #d8dee9 on #1b1e24
    border = #4c566a
    focus-border = #88c0d0 bold
    pane-title = #81a1c1 bold
    title-bar = #eceff4 on #3b4252 bold
    label = #81a1c1
    value = #eceff4
    focus-value = #1b1e24 on #88c0d0 bold
    hint = #7b8394
    key = #ebcb8b bold
    status = #d8dee9 on #2e3440
    banner = #1b1e24 on #ebcb8b bold
    error = #bf616a bold
    warning = #ebcb8b
    success = #a3be8c
    selection = #1b1e24 on #81a1c1
    dim = #616e88
    overlay = #e5e9f0 on #2e3440
    progress = #a3be8c on #3b4252
    """

    public static let builtinDark: Theme = try! Theme.parse(builtinDarkText)
}
