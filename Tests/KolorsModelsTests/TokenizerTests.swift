import Foundation
import KolorsModels
import Testing
import KolorsTestSupport

@Suite("ChatGLM / SentencePiece tokenizer")
struct TokenizerTests {
    static let file: TokenizerFixtures.File? = try? TokenizerFixtures.load()

    func reference() throws -> TokenizerFixtures.File {
        try #require(Self.file, "cannot read Tests/Fixtures/references/tokenizer_cases.json")
    }

    func processor(_ name: String) throws -> SentencePieceProcessor {
        let relative = try #require(try reference().meta.models[name])
        return try SentencePieceProcessor(modelFile: TokenizerFixtures.modelPath(relative))
    }

    @Test("the reference tables are there and big enough")
    func tables() throws {
        let ref = try reference()
        #expect(ref.cases.count >= 200)
        #expect(ref.meta.maxLength == 256)
        #expect(ref.cases.contains { $0.pipeline.inputIds.filter { $0 != 0 }.count == 256 })
    }

    @Test("ids and pieces equal sentencepiece's for every case", arguments: TokenizerFixtures.modelNames)
    func sentencePieceCases(model: String) throws {
        let ref = try reference()
        let sp = try processor(model)
        #expect(sp.vocabSize == ref.meta.vocabSizes[model])
        var failures = 0
        for c in ref.cases {
            let expected = c[model]
            let ids = sp.encode(c.text)
            let pieces = sp.encodeAsPieces(c.text)
            if ids != expected.ids || pieces != expected.pieces {
                failures += 1
                if failures <= 5 {
                    Issue.record("""
                        \(model) \(c.text.debugDescription)
                          expected \(expected.pieces) \(expected.ids)
                          got      \(pieces) \(ids)
                        """)
                }
            }
        }
        #expect(failures == 0, "\(failures) of \(ref.cases.count) cases differ")
    }

    @Test("malformed UTF-8 becomes U+FFFD per byte, as in sentencepiece", arguments: TokenizerFixtures.modelNames)
    func byteCases(model: String) throws {
        let ref = try reference()
        let sp = try processor(model)
        for c in ref.byteCases {
            let tokens = sp.encodeTokens(c.bytes)
            #expect(tokens.map(\.id) == c[model].ids, "\(model) \(c.hex)")
            #expect(tokens.map(\.text) == c[model].pieces, "\(model) \(c.hex)")
            #expect(sp.encode(utf8: c.bytes) == c[model].ids, "\(model) \(c.hex)")
        }
    }

    @Test("input_ids, attention_mask and position_ids equal KolorsPipeline's for every case")
    func pipelineCases() throws {
        let ref = try reference()
        let path = TokenizerFixtures.modelPath("tiny-kolors/tokenizer/tokenizer.model")
        let tokenizer = try ChatGLMTokenizer(modelFile: path)
        let batch = tokenizer(ref.cases.map(\.text))
        #expect(batch.count == ref.cases.count)
        for (row, c) in ref.cases.enumerated() {
            #expect(batch.inputIds[row] == c.pipeline.inputIds, "\(c.text.debugDescription)")
            #expect(batch.attentionMask[row] == c.pipeline.attentionMask, "\(c.text.debugDescription)")
            #expect(batch.positionIds[row] == c.pipeline.positionIds, "\(c.text.debugDescription)")
            #expect(tokenizer.tokenCount(c.text) == c.chatglm.ids.count + 2)
        }
    }

    @Test("a piece spelled like a special token gets the special id, as in diffusers")
    func specialPieces() throws {
        let tokenizer = try ChatGLMTokenizer(modelFile: TokenizerFixtures.modelPath("tiny-kolors/tokenizer/tokenizer.model"))
        let sp = tokenizer.sentencePiece
        #expect(sp.encodeAsPieces("xsop xeop") == ["▁", "x", "sop", "▁", "x", "eop"])
        let sop = try #require(tokenizer.specialTokens["sop"]), eop = try #require(tokenizer.specialTokens["eop"])
        let ids = tokenizer.encode("xsop xeop")
        #expect(ids[2] == sop && ids[5] == eop)
        #expect(sp.encode("xsop xeop")[2] == sp.pieceToId("sop"))
        #expect(!tokenizer.encode("<|user|> [gMASK]").contains { $0 >= Int32(sp.vocabSize) })
    }

    @Test("the wrapper over a model without byte fallback matches diffusers too")
    func edgeWrapper() throws {
        let ref = try reference()
        let tokenizer = try ChatGLMTokenizer(modelFile: TokenizerFixtures.modelPath("tokenizers/edge-bpe.model"))
        #expect(ref.cases.contains { $0.edgePipelineIds.dropFirst(2).contains(tokenizer.specialTokens["[gMASK]"] ?? -1) })
        for c in ref.cases {
            #expect(tokenizer.prefixIds + tokenizer.encode(c.text) == c.edgePipelineIds, "\(c.text.debugDescription)")
        }
    }

    @Test("other max lengths truncate and pad as transformers does")
    func maxLengthCases() throws {
        let ref = try reference()
        let tokenizer = try ChatGLMTokenizer(modelFile: TokenizerFixtures.modelPath("tiny-kolors/tokenizer/tokenizer.model"))
        #expect(ref.maxLengthCases.count > 20)
        for c in ref.maxLengthCases {
            let out = tokenizer(c.text, maxLength: c.maxLength)
            #expect(out.inputIds == [c.inputIds], "\(c.maxLength) \(c.text.debugDescription)")
            #expect(out.attentionMask == [c.attentionMask], "\(c.maxLength) \(c.text.debugDescription)")
            #expect(out.positionIds == [c.positionIds], "\(c.maxLength) \(c.text.debugDescription)")
        }
    }

    @Test("special tokens follow the SentencePiece vocabulary; pad is the unknown id")
    func specialTokens() throws {
        let ref = try reference()
        let tokenizer = try ChatGLMTokenizer(modelFile: TokenizerFixtures.modelPath("tiny-kolors/tokenizer/tokenizer.model"))
        #expect(tokenizer.specialTokens == ref.meta.chatglmSpecialIds)
        #expect(tokenizer.prefixIds == [ref.meta.chatglmSpecialIds["[gMASK]"], ref.meta.chatglmSpecialIds["sop"]])
        #expect(tokenizer.padId == 0)
        #expect(tokenizer.vocabSize == 2509)
        let sp = tokenizer.sentencePiece
        #expect(sp.unkId == 0 && sp.bosId == 1 && sp.eosId == 2 && sp.padId == -1)
        #expect(sp.normalizer.addDummyPrefix && !sp.normalizer.removeExtraWhitespaces)
        #expect(sp.model.normalizerSpec.name == "identity")
        #expect(sp.model.trainerSpec.byteFallback && sp.model.trainerSpec.splitDigits)
        #expect(sp.piece(3) == "<0x00>")
        #expect(sp.pieceToId("<0x0A>") == 13)
        #expect(sp.pieceToId("no such piece") == 0)
    }

    @Test("a 2,000-character mixed text encodes in milliseconds")
    func speed() throws {
        let tokenizer = try ChatGLMTokenizer(modelFile: TokenizerFixtures.modelPath("tiny-kolors/tokenizer/tokenizer.model"))
        let unit = "A cozy cabin in the snowy forest, 雪山脚下的湖泊，湖水清澈见底。 8k 😀 龘 "
        var text = ""
        while text.count < 2000 { text += unit }
        text = String(text.prefix(2000))
        _ = tokenizer.encode(text)  // warm up
        let clock = ContinuousClock()
        let runs = 20
        var ids: [Int32] = []
        let elapsed = clock.measure {
            for _ in 0..<runs { ids = tokenizer.encode(text) }
        }
        let perRun = elapsed / runs
        print("encoding 2,000 characters (\(ids.count) ids): \(perRun)")
        #expect(ids.count > 500)
        #expect(perRun < .milliseconds(100))
    }
}
