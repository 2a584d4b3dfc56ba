import Foundation
import KolorsStudioCore
import Testing

@Suite("Themes")
struct ThemeTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var themesDir: String { repo.appendingPathComponent("themes").path }

    @Test("the shipped themes parse, define every role, and dark matches the built-in one")
    func shipped() throws {
        let lib = ThemeLibrary(directories: [Self.themesDir])
        let names = lib.names()
        #expect(Array(names.prefix(3)) == ["dark", "light", "high-contrast"])
        for n in names {
            let t = try lib.load(n)
            #expect(t.name == n)
            for role in StyleRole.allCases { #expect(t.styles[role] != nil, "\(n) lacks \(role.rawValue)") }
        }
        #expect(try lib.load("dark") == Theme.builtinDark)
        #expect(FileManager.default.fileExists(atPath: Self.themesDir + "/README.md"))
        #expect(throws: ThemeError.self) { try lib.load("no-such-theme") }
        #expect(try ThemeLibrary(directories: []).load("dark") == Theme.builtinDark)
    }

    @Test("the format: colours, attributes, comments and errors with line numbers")
    func format() throws {
        let t = try Theme.parse("""
        # comment
        name = t
        base = #102030 on black   # trailing comment
        label = bright-cyan bold underline
        hint = color244
        status = default on gray
        """)
        #expect(t.style(.base) == ThemeStyle(foreground: .rgb(0x10, 0x20, 0x30), background: .ansi(0)))
        #expect(t.style(.label) == ThemeStyle(foreground: .ansi(14), attributes: [.bold, .underline]))
        #expect(t.style(.hint).foreground == .indexed(244))
        #expect(t.style(.status) == ThemeStyle(foreground: .terminalDefault, background: .ansi(8)))
        #expect(t.style(.error) == t.style(.base), "missing roles fall back to base")
        func error(_ text: String) -> ThemeError? {
            do { _ = try Theme.parse(text); return nil } catch let e as ThemeError { return e } catch { return nil }
        }
        #expect(error("name = x\nbase = red\nfrobnicate = red")?.line == 3)
        #expect(error("name = x\nbase = #12345")?.message.contains("unknown colour") == true)
        #expect(error("name = x\nbase = red on")?.line == 2)
        #expect(error("name = x\nbase = red blue")?.line == 2)
        #expect(error("base = red")?.message.contains("name") == true)
        #expect(error("name = x\nlabel = red")?.message.contains("base") == true)
        #expect(error("name = x\njust words")?.line == 2)
    }

    @Test("on 8 and 16 colours every role of every shipped theme keeps text legible (contrast ≥ 3:1 as xterm shows it)")
    func legibleOnFewColours() throws {
        let lib = ThemeLibrary(directories: [Self.themesDir])
        for name in lib.names() {
            let t = try lib.load(name)
            for colors in [8, 16] {
                for role in StyleRole.allCases {
                    let r = t.resolve(role, colors: colors)
                    guard r.foreground >= 0, r.background >= 0 else { continue }
                    let c = Theme.contrast(foreground: r.foreground, background: r.background, bold: r.attributes.contains(.bold), colors: colors)
                    #expect(c >= Theme.minimumContrast, "\(name).\(role.rawValue) on \(colors) colours: \(r) has contrast \(c)")
                }
            }
        }
        // the cases users saw: the light theme's yellow and green text on white, the banner's bold black on yellow
        let light = try lib.load("light")
        for role in [StyleRole.warning, .key, .success] { #expect(light.resolve(role, colors: 8).foreground == 0, "\(role)") }
        let banner = try lib.load("dark").resolve(.banner, colors: 8)
        #expect(banner.foreground == 0 && banner.background == 3 && !banner.attributes.contains(.bold), "black, not grey, on yellow")
        // colours that were legible keep their hue
        #expect(try lib.load("dark").resolve(.error, colors: 8).foreground == 1)
        #expect(light.resolve(.error, colors: 8).foreground == 1)
        #expect(Theme.contrast(foreground: 0, background: 7, bold: false, colors: 8) > 15)
        #expect(Theme.contrast(foreground: 3, background: 7, bold: false, colors: 8) < 2)
    }

    @Test("themes degrade to 256, 16, 8 colours and monochrome")
    func degrade() throws {
        let lib = ThemeLibrary(directories: [Self.themesDir])
        for name in ["dark", "light", "high-contrast"] {
            let t = try lib.load(name)
            for role in StyleRole.allCases {
                let direct = t.resolve(role, colors: 1 << 24)
                #expect(direct.foreground >= -1)
                let c256 = t.resolve(role, colors: 256)
                #expect((-1..<256).contains(c256.foreground) && (-1..<256).contains(c256.background))
                let c16 = t.resolve(role, colors: 16)
                #expect((-1..<16).contains(c16.foreground) && (-1..<16).contains(c16.background))
                let c8 = t.resolve(role, colors: 8)
                #expect((-1..<8).contains(c8.foreground) && (-1..<8).contains(c8.background), "\(name).\(role)")
                #expect(c8.foreground != c8.background || c8.foreground == -1, "\(name).\(role) unreadable on 8 colours")
                let mono = t.resolve(role, colors: 2)
                #expect(mono.foreground == -1 && mono.background == -1)
            }
            #expect(t.resolve(.selection, colors: 0).attributes.contains(.reverse))
            #expect(t.resolve(.focusBorder, colors: 0).attributes.contains(.bold))
        }
        let dark = try lib.load("dark")
        #expect(dark.resolve(.base, colors: 8).background == 0, "a dark background stays black")
        let light = try lib.load("light")
        #expect(light.resolve(.base, colors: 8).background == 7, "a light background becomes white")
        // muted theme colours keep their hue on 8 colours instead of turning grey
        #expect(dark.resolve(.error, colors: 8).foreground == 1)
        #expect(dark.resolve(.success, colors: 8).foreground == 2)
        #expect(dark.resolve(.warning, colors: 8).foreground == 3)
        #expect(dark.resolve(.focusBorder, colors: 8).foreground == 6)
        #expect(dark.resolve(.banner, colors: 8).background == 3)
        #expect(dark.resolve(.error, colors: 16).foreground == 1)
        #expect([4, 6].contains(light.resolve(.titleBar, colors: 8).background), "light's title bar stays blue-ish")
        let hc = try lib.load("high-contrast")
        #expect(hc.resolve(.key, colors: 8) == ResolvedStyle(foreground: 3, background: 0, attributes: [.bold]),
                "bright yellow becomes yellow + bold")
        #expect(Theme.nearestXterm256(0, 0, 0) == 16)
        #expect(Theme.nearestXterm256(255, 255, 255) == 231)
        #expect(Theme.nearestXterm256(128, 128, 128) == 244)
        #expect(Theme.nearestXterm256(255, 0, 0) == 196)
    }
}
