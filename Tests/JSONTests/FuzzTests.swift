// Seeded mutation fuzzing: no crash, round trips for every accepted document, and agreement with the reference validator and the scanner.

import JSON
import Testing

let fuzzSeeds: [String] = [
    #"{"a":[1,2.5e3,-0,true,null,"x\n\u0001é😀"]}"#,
    #"{"user":{"id":12345,"name":"Ada \"L\" Lovelace","tags":["x","y"],"score":-0.5e-3},"ok":true,"n":null}"#,
    #"[0,-1,1.5,1e10,1E-2,-0.0e+0,123456789012345678901234567890,"",[],{},[[[]]],{"":{"":[]}}]"#,
    #"["\ud83d\ude00 \u00e9 \/ \\ \b\f\n\r\t", "€𝄞", "日本語", "\u0000"]"#,
    #" { "k1" : "v1" , "k2" : [ true , false ] , "k3" : { "k1" : 1 } } "#,
    #"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14}"#,
    #""just a string with \"escapes\" and ünïcödé""#,
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "-12.75e+300",
    #"{"e\u0301":1,"x":{"y":{"z":[null,{"w":"\uDBFF\uDFFF"}]}}}"#,
]

/// Bytes a mutation likes to insert: structural characters, escape material and UTF-8 edge bytes.
let interestingBytes: [UInt8] = Array(#"{}[]":,\ -+.0123456789eEtrufalsnbu/"#.utf8)
    + [0x00, 0x09, 0x0A, 0x0D, 0x1F, 0x7F, 0x80, 0xA0, 0xBF, 0xC0, 0xC2, 0xC3, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]

func mutate(_ doc: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
    var d = doc
    // Mostly one mutation, so that a useful share of the documents stays valid; sometimes up to four.
    let rounds = Bool.random(using: &rng) ? 1 : Int.random(in: 2...4, using: &rng)
    for _ in 0..<rounds {
        let pick: UInt8 = Bool.random(using: &rng) ? interestingBytes.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
        let at = d.isEmpty ? 0 : Int.random(in: 0..<d.count, using: &rng)
        switch Int.random(in: 0..<7, using: &rng) {
        case 0 where !d.isEmpty: d[at] = pick
        case 1: d.insert(pick, at: at)
        case 2 where !d.isEmpty: d.remove(at: at)
        case 3 where !d.isEmpty:  // copy a slice elsewhere: makes duplicate keys and deeper nesting
            let end = min(d.count, at + Int.random(in: 1...12, using: &rng))
            let slice = d[at..<end]
            d.insert(contentsOf: slice, at: Int.random(in: 0...d.count, using: &rng))
        case 4 where !d.isEmpty: d.removeSubrange(Int.random(in: 0...d.count, using: &rng)...)
        case 5 where d.count > 1: d.swapAt(at, Int.random(in: 0..<d.count, using: &rng))
        default: d.insert(contentsOf: b(#"\u"#) + Array(String(UInt16.random(in: 0...UInt16.max, using: &rng), radix: 16).utf8), at: at)
        }
    }
    return d
}

@Suite struct FuzzTests {
    @Test func seedsAreValid() throws {
        for s in fuzzSeeds { _ = try JSONParser.parse(s) }
    }

    @Test func twentyThousandMutations() throws {
        var rng = SplitMix64(seed: 0x5EED_CAFE_F00D_0001)
        let seeds = fuzzSeeds.map { Array($0.utf8) }
        var accepted = 0
        for round in 0..<20_000 {
            let doc = mutate(seeds[round % seeds.count], &rng)
            let parsed = outcome(doc)
            // Differential oracle: an independent recursive validator must agree on acceptance.
            let agrees = ReferenceValidator.accepts(doc) == ((try? parsed.get()) != nil)
            #expect(agrees, "reference disagrees on \(doc) (round \(round)): \(parsed)")
            // The scanner must refuse exactly like the parser, and describe objects exactly.
            let scanned = Result { () throws(JSONError) in try JSONParser.scanTopLevelObject(doc) }
            switch parsed {
            case .failure(let error):
                #expect(error.offset >= 0 && error.offset <= doc.count)
                #expect(scanned.map { _ in 0 } == .failure(error), "scan differs on \(doc)")
            case .success(let value):
                accepted += 1
                let once = value.serialized()
                let again = try JSONParser.parse(once)
                #expect(again == value, "round trip changed \(doc)")
                #expect(again.serialized() == once)
                if let object = value.objectValue {
                    let members = try scanned.get()
                    #expect(members.map(\.key) == object.members.map(\.key))
                    for (m, expected) in zip(members, object.members) {
                        #expect(try JSONParser.parse(doc[m.range]) == expected.value)
                    }
                } else {
                    #expect(throws: JSONError.self) { try scanned.get() }
                }
            }
        }
        // The mutations must be mild enough that a real share of documents stays valid.
        #expect(accepted > 2_000)
    }

    @Test func randomBytesNeverCrash() throws {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<5_000 {
            let doc = (0..<Int.random(in: 0...64, using: &rng)).map { _ in interestingBytes.randomElement(using: &rng)! }
            if case .success(let v) = outcome(doc) {
                #expect(try JSONParser.parse(v.serialized()) == v)
            }
            #expect(ReferenceValidator.accepts(doc) == ((try? JSONParser.parse(doc)) != nil), "\(doc)")
        }
    }
}
