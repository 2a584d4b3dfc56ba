import KolorsStudioCore
import Testing

@Suite("Cell widths")
struct CellWidthTests {
    @Test("single characters", arguments: [
        ("a", 1), (" ", 1), ("é", 1), ("ß", 1),
        ("可", 2), ("图", 2), ("，", 2), ("。", 2), ("　", 2),          // CJK, fullwidth punctuation, ideographic space
        ("Ａ", 2), ("ｱ", 1),                                          // fullwidth Latin / halfwidth katakana
        ("한", 2), ("あ", 2), ("カ", 2),
        ("䷀", 1),                                                   // Yijing hexagram: narrow despite the CJK block nearby
        ("🐱", 2), ("😀", 2), ("⌚", 2), ("⭐", 2),                    // emoji presentation
        ("❤", 1), ("❤️", 2),                                          // text presentation; + VS16
        ("👨‍👩‍👧", 2), ("🇨🇳", 2), ("1️⃣", 2), ("👍🏽", 2),                  // ZWJ family, flag, keycap, skin tone
        ("e\u{301}", 1),                                             // base + combining acute
        ("\u{200B}", 0), ("\u{301}", 0), ("\u{7}", 0),               // zero-width space, lone combining, control
        ("𠀀", 2),                                                   // CJK Extension B
    ] as [(String, Int)])
    func widths(text: String, width: Int) {
        #expect(text.count <= 1)
        #expect(CellWidth.of(text) == width, "\(text.unicodeScalars.map { String($0.value, radix: 16) })")
    }

    @Test("strings, truncation and padding")
    func strings() {
        #expect(CellWidth.of("Kolors 可图 ✓") == 13)
        #expect(CellWidth.of("一只猫🐱 cat") == 12)
        #expect(CellWidth.truncate("可图可图", to: 5) == "可图…")
        #expect(CellWidth.of(CellWidth.truncate("可图可图", to: 4)) <= 4)
        #expect(CellWidth.pad("可", to: 4) == "可  ")
        #expect(CellWidth.prefix("ab可c", fitting: 3) == ("ab", 2))
        #expect(CellWidth.truncate("short", to: 10) == "short")
    }
}
