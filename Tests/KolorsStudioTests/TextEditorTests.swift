import Foundation
import KolorsStudioCore
import Testing

@Suite("Text editor")
struct TextEditorTests {
    typealias P = TextEditor.Position

    @Test("insert, backspace and delete over CJK and emoji clusters")
    func basicEditing() {
        var e = TextEditor()
        e.insert("一只猫🐱cat")
        #expect(e.text == "一只猫🐱cat")
        #expect(e.cursor == P(line: 0, column: 7))
        e.moveLeft(); e.moveLeft(); e.moveLeft(); e.moveLeft()   // before 🐱
        e.deleteForward()
        #expect(e.text == "一只猫cat")
        e.deleteBackward()
        #expect(e.text == "一只cat")
        #expect(e.cursor == P(line: 0, column: 2))
        e.insert("👨‍👩‍👧")
        #expect(e.text == "一只👨‍👩‍👧cat")
        e.deleteBackward()                                       // a whole ZWJ family is one cluster
        #expect(e.text == "一只cat")
        e.moveToStart()
        e.deleteBackward()                                       // nothing before the start
        #expect(e.text == "一只cat")
    }

    @Test("newlines split and join lines; CRLF, CR and tabs are normalised")
    func lines() {
        var e = TextEditor("ab")
        e.moveLeft()
        e.insert("\n")
        #expect(e.lines.count == 2 && e.text == "a\nb")
        #expect(e.cursor == P(line: 1, column: 0))
        e.deleteBackward()
        #expect(e.text == "ab" && e.cursor == P(line: 0, column: 1))
        e.moveToEnd()
        e.insert("x\r\ny\rz\tw")
        #expect(e.text == "abx\ny\nz w")
        e.moveToStart()
        e.moveEnd(width: 80)
        e.deleteForward()                                         // joins the next line
        #expect(e.text == "abxy\nz w")
        var single = TextEditor(singleLine: true)
        single.insert("/tmp/a\nb.png")
        #expect(single.text == "/tmp/a b.png" && single.lines.count == 1)
    }

    @Test("a combining mark typed after its base joins the cluster")
    func combining() {
        var e = TextEditor("cafe")
        e.insert("\u{301}")
        #expect(e.text == "café")
        #expect(e.lines[0].count == 4)
        #expect(e.cursor.column == 4)
        e.deleteBackward()
        #expect(e.text == "caf")
    }

    @Test("word deletion and word movement")
    func words() {
        var e = TextEditor("a red fox, jumping")
        e.deleteWordBackward()
        #expect(e.text == "a red fox, ")
        e.deleteWordBackward()                                   // skips the space, deletes the comma run
        #expect(e.text == "a red fox")
        e.deleteWordBackward()
        #expect(e.text == "a red ")
        e.moveToStart()
        e.deleteWordForward()
        #expect(e.text == " red ")
        var z = TextEditor("一只猫，坐在窗台上")
        z.deleteWordBackward()                                   // a run of ideographs up to the punctuation
        #expect(z.text == "一只猫，")
        z.moveWordLeft()
        #expect(z.cursor.column == 3)
        z.moveWordLeft()
        #expect(z.cursor.column == 0)
        z.moveWordRight()
        #expect(z.cursor.column == 3)
        var two = TextEditor("ab\ncd")
        two.moveToStart(); two.moveDown(width: 10); two.moveHome(width: 10)
        two.deleteWordBackward()                                 // at a line start: joins with the previous line
        #expect(two.text == "abcd")
        var k = TextEditor("hello world")
        k.moveWordLeft()
        k.deleteToLineStart()
        #expect(k.text == "world")
        k.moveRight()
        k.deleteToLineEnd()
        #expect(k.text == "w")
    }

    @Test("soft wrapping never splits a wide cluster, and the cursor maps to rows")
    func wrapping() {
        let e = TextEditor("ab可图cd")                             // widths 1 1 2 2 1 1 = 8
        let rows = e.visualRows(width: 5)
        #expect(rows.map(\.text) == ["ab可", "图cd"])
        #expect(rows.allSatisfy { CellWidth.of($0.text) <= 5 })
        #expect(e.cursorVisual(rows: rows) == (1, 4))
        let full = TextEditor("abcde")
        let fr = full.visualRows(width: 5)
        #expect(fr.map(\.text) == ["abcde", ""])                 // cursor at the end of a full row goes below
        #expect(full.cursorVisual(rows: fr) == (1, 0))
    }

    @Test("up and down move by visual rows and keep the column across wide characters")
    func vertical() {
        var e = TextEditor("abcdefgh\n可图可图\nxy")
        e.moveToStart()
        e.moveRight(); e.moveRight(); e.moveRight(); e.moveRight()   // x = 4
        e.moveDown(width: 20)
        #expect(e.cursor == P(line: 1, column: 2))               // 可图| → x = 4
        e.moveDown(width: 20)
        #expect(e.cursor == P(line: 2, column: 2))               // short line: end
        e.moveUp(width: 20)
        #expect(e.cursor == P(line: 1, column: 2))               // preferred x kept
        e.moveUp(width: 20)
        #expect(e.cursor == P(line: 0, column: 4))
        e.moveUp(width: 20)
        #expect(e.cursor == P(line: 0, column: 0))               // top row: to the start
        var w = TextEditor("0123456789")
        w.moveToStart()
        w.moveDown(width: 4)
        #expect(w.cursor.column == 4)                            // second visual row of the same line
        w.moveEnd(width: 4)
        #expect(w.cursor.column == 7)                            // end of that visual row
        w.moveEnd(width: 4)
        #expect(w.cursor.column == 10)                           // again: end of the line
        w.moveHome(width: 4)
        #expect(w.cursor.column == 8)
        w.moveHome(width: 4)
        #expect(w.cursor.column == 0)
    }

    @Test("pasting 5,000 characters (at once and one by one) is fast and exact")
    func longPaste() {
        var text = ""
        let pieces = ["masterpiece", ", ", "一只可爱的小猫", " 🐱 ", "line\n"]
        var i = 0
        while text.count < 5000 { text += pieces[i % pieces.count]; i += 1 }
        text = String(text.prefix(5000))
        let t0 = Date()
        var e = TextEditor()
        e.insert(text)
        #expect(e.text == text)
        #expect(e.characterCount == 5000)
        var typed = TextEditor()
        for c in text { typed.insert(String(c)) }
        #expect(typed.text == text)
        _ = typed.visualRows(width: 40)
        let elapsed = Date().timeIntervalSince(t0)
        #expect(elapsed < 2.0, "took \(elapsed) s")
    }
}
