import KolorsStudio
import KolorsStudioCore
import Testing

@Suite("Input decoding")
struct InputTests {
    func scalars(_ s: String) -> [RawInput] { s.unicodeScalars.map { .scalar($0.value) } }

    @Test("control bytes, Esc, Alt and text")
    func keys() {
        var d = InputDecoder()
        #expect(d.feed(scalars("\u{7}")) == [.key(.ctrl("g"))])
        #expect(d.feed(scalars("\u{11}\u{f}\u{3}")) == [.key(.ctrl("q")), .key(.ctrl("o")), .key(.ctrl("c"))])
        #expect(d.feed(scalars("\t\r\u{7F}")) == [.key(.tab), .key(.enter), .key(.backspace)])
        #expect(d.feed(scalars("\u{1B}")) == [.key(.escape)])
        #expect(d.feed(scalars("\u{1B}d")) == [.key(.alt("d"))])
        #expect(d.feed(scalars("\u{1B}\u{7F}")) == [.key(.altBackspace)])
        #expect(d.feed(scalars("可e\u{301}🐱")) == [.key(.character("可")), .key(.character("é")), .key(.character("🐱"))])
        #expect(d.feed([.key(.up), .scalar(0x61)]) == [.key(.up), .key(.character("a"))])
        #expect(d.feed(scalars("\u{1B}\u{1B}")) == [.key(.escape), .key(.escape)])
    }

    @Test("bracketed paste, also across read batches")
    func paste() {
        var d = InputDecoder()
        #expect(d.feed(scalars("x\u{1B}[200~hello\r\n世界\u{1B}[201~y")) ==
                [.key(.character("x")), .paste("hello\r\n世界"), .key(.character("y"))])
        #expect(d.feed(scalars("\u{1B}[200~part one ")).isEmpty)
        #expect(d.isPasting)
        #expect(d.feed(scalars("\u{7}part two\u{1B}[201~")) == [.paste("part one \u{7}part two")])
        #expect(!d.isPasting)
    }

    @Test("terminal replies: DA1 sixel detection, cell size, preview mode precedence")
    func probe() {
        var c = TerminalCapabilities()
        c.parseReplies(Array("\u{1B}[6;20;10t\u{1B}[?63;1;2;4;6;9;15;22c".utf8))
        #expect(c.sixel && c.cellWidth == 10 && c.cellHeight == 20)
        #expect(c.da1 == [63, 1, 2, 4, 6, 9, 15, 22])
        var t = TerminalCapabilities()
        t.parseReplies(Array("\u{1B}[?1;2c".utf8))            // tmux without sixel
        #expect(!t.sixel && t.da1 == [1, 2])
        var v = TerminalCapabilities()
        v.parseReplies(Array("\u{1B}[?4;1c".utf8))            // a leading 4 is the terminal class, not sixel
        #expect(!v.sixel)
        #expect(TerminalCapabilities.hasDA1(Array("\u{1B}[?62;4c".utf8)))
        #expect(!TerminalCapabilities.hasDA1(Array("\u{1B}[6;20;10t".utf8)))
        #expect(TerminalProbe.resolve(flag: .auto, environment: [:], caps: c) == .sixel)
        #expect(TerminalProbe.resolve(flag: .auto, environment: [:], caps: t) == .blocks)
        #expect(TerminalProbe.resolve(flag: .auto, environment: ["KOLORS_PREVIEW": "none"], caps: c) == .none)
        #expect(TerminalProbe.resolve(flag: .auto, environment: ["KOLORS_PREVIEW": "SIXEL"], caps: t) == .sixel)
        #expect(TerminalProbe.resolve(flag: .blocks, environment: ["KOLORS_PREVIEW": "sixel"], caps: c) == .blocks)
    }
}
