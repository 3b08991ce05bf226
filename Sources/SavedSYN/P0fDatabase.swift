/// A p0f v3 signature database (the `[tcp:request]` part of a `p0f.fp` file) and p0f 3.09b's SYN
/// matching rules (fp_tcp.c tcp_find_match()): exact matches first in file order, a generic signature
/// when nothing specific matched, else the first fuzzy match (quirks differing only by `df`/`id+`
/// missing or `id-`/`ecn` added, or a TTL more than 35 hops below the signature's), never fuzzy for
/// applications (`!` class).
public struct P0fDatabase: Sendable {
    /// How a signature's window size is given.
    public enum WindowRule: Equatable, Sendable {
        case any
        case exact(Int)
        case modulo(Int)
        case mssMultiple(Int)
        case mtuMultiple(Int)
    }

    /// One `sig = ...` line of `[tcp:request]` with its label.
    public struct Entry: Equatable, Sendable {
        /// `g:` label: used only when no specific signature matched.
        public var generic: Bool
        /// The class (`win`, `unix`, `other`), nil for `!` (an application or tool, p0f prints `app =`).
        public var osClass: String?
        public var name: String
        public var flavor: String?
        public var lineNumber: Int
        public var labelNumber: Int
        /// `ittl-`: the TTL is randomised, only "not above" is checked.
        public var badTTL: Bool
        /// -1 for `*`.
        public var ipVersion: Int
        public var ttl: Int
        public var ipOptionsLength: Int
        /// -1 for `*`.
        public var mss: Int
        public var window: WindowRule
        /// -1 for `*`.
        public var windowScale: Int
        public var optionLayout: InlineBytes
        public var eolPadding: Int
        public var quirks: P0fQuirks
        /// -1 `*`, 0 `0`, 1 `+`.
        public var payloadClass: Int
        /// Free-text `; source:` comment found above the label (our own database uses it).
        public var source: String?

        /// What p0f prints after `os =` / `app =`.
        public var label: String { flavor.map { name + " " + $0 } ?? name }
        public var isApplication: Bool { osClass == nil }
    }

    public struct Match: Equatable, Sendable {
        public var entry: Entry
        public var fuzzy: Bool
        /// Hop distance (signature TTL minus observed TTL).
        public var distance: Int
        public var label: String { entry.label }
    }

    /// A line p0f would refuse, with file:line:column.
    public typealias LoadError = FileLoadError

    public private(set) var entries: [Entry] = [] {
        didSet { keys = entries.map(MatchKey.init) }
    }
    /// What the matcher reads of each entry, without its strings: walking it copies no reference.
    private(set) var keys: [MatchKey] = []
    public private(set) var classes: [String] = []
    /// The file (or name) it was loaded from.
    public let origin: String

    public init(contentsOf path: String) throws(LoadError) {
        guard let text = readTextFile(path) else {
            throw LoadError(file: path, line: 0, column: 0, message: "cannot read the file")
        }
        try self.init(text: text, origin: path)
    }

    public init(text: String, origin: String) throws(LoadError) {
        self.origin = origin
        var parser = P0fFileParser(origin: origin)
        try parser.parse(text)
        entries = parser.entries
        keys = entries.map(MatchKey.init)
        classes = parser.classes
    }

    /// Concatenation: `self`'s entries first.
    public func merged(with other: P0fDatabase) -> P0fDatabase {
        var d = self
        d.entries += other.entries
        return d
    }

    /// The matching fields of an `Entry` (all plain values).
    struct MatchKey {
        var generic: Bool
        var isApplication: Bool
        var badTTL: Bool
        var ipVersion: Int
        var ttl: Int
        var ipOptionsLength: Int
        var mss: Int
        var window: WindowRule
        var windowScale: Int
        var optionLayout: InlineBytes
        var eolPadding: Int
        var quirks: P0fQuirks
        var payloadClass: Int

        init(_ e: Entry) {
            generic = e.generic; isApplication = e.isApplication; badTTL = e.badTTL; ipVersion = e.ipVersion
            ttl = e.ttl; ipOptionsLength = e.ipOptionsLength; mss = e.mss; window = e.window
            windowScale = e.windowScale; optionLayout = e.optionLayout; eolPadding = e.eolPadding
            quirks = e.quirks; payloadClass = e.payloadClass
        }
    }

    /// p0f's tcp_find_match() for a SYN (`to_srv` = 1, no peer MSS). Allocates nothing.
    public func match(_ sig: P0fSignature) -> Match? {
        guard let (i, fuzzy, distance) = matchIndex(sig) else { return nil }
        return Match(entry: entries[i], fuzzy: fuzzy, distance: distance)
    }

    /// The index in `entries` of the match, whether it is fuzzy, and the hop distance.
    public func matchIndex(_ sig: P0fSignature) -> (index: Int, fuzzy: Bool, distance: Int)? {
        var fuzzyMatch: Int? = nil
        var genericMatch: Int? = nil
        let win = sig.windowMultiple
        let observedTTL = Int(sig.ttl)
        for index in keys.indices {
            let ref = keys[index]
            guard ref.optionLayout == sig.optionLayout else { continue }
            var fuzzy = false
            var refQuirks = ref.quirks
            if ref.ipVersion == -1 {
                if sig.ipVersion == 4 {
                    refQuirks.remove(.flow)
                } else {
                    refQuirks.subtract([.df, .nonZeroID, .zeroID])
                }
            }
            if refQuirks != sig.quirks {
                let deleted = refQuirks.subtracting(sig.quirks)
                let added = sig.quirks.subtracting(refQuirks)
                if fuzzyMatch != nil || !deleted.subtracting([.df, .nonZeroID]).isEmpty
                    || !added.subtracting([.zeroID, .ecn]).isEmpty {
                    continue
                }
                fuzzy = true
            }
            if ref.eolPadding != sig.eolPadding || ref.ipOptionsLength != sig.ipOptionsLength { continue }
            if ref.badTTL {
                if ref.ttl < observedTTL { continue }
            } else if ref.ttl < observedTTL || ref.ttl - observedTTL > P0fSignature.maxDistance {
                fuzzy = true
            }
            if ref.mss != -1 && ref.mss != sig.mss { continue }
            if ref.windowScale != -1 && ref.windowScale != sig.windowScale { continue }
            if ref.payloadClass != -1 && ref.payloadClass != (sig.hasPayload ? 1 : 0) { continue }
            switch ref.window {
            case .any: break
            case let .exact(w): if w != Int(sig.window) { continue }
            case let .modulo(m): if Int(sig.window) % m != 0 { continue }
            case let .mssMultiple(n): if win == nil || win!.ofMTU || win!.multiplier != n { continue }
            case let .mtuMultiple(n): if win == nil || !win!.ofMTU || win!.multiplier != n { continue }
            }
            if !fuzzy {
                if !ref.generic {
                    return (index, false, ref.ttl - observedTTL)
                } else if genericMatch == nil {
                    genericMatch = index
                }
            } else if fuzzyMatch == nil {
                fuzzyMatch = index
            }
        }
        if let g = genericMatch { return (g, false, keys[g].ttl - observedTTL) }
        guard let fi = fuzzyMatch, !keys[fi].isApplication else { return nil }
        let f = keys[fi]
        let dist: Int
        if f.ttl < observedTTL || (!f.badTTL && f.ttl - observedTTL > P0fSignature.maxDistance) {
            dist = sig.guessedDistance
        } else {
            dist = f.ttl - observedTTL
        }
        return (fi, true, dist)
    }
}

/// Reads p0f.fp text with p0f 3.09b's readfp.c / tcp_register_sig() grammar. Only `[tcp:request]`
/// signatures are kept; other sections are checked for structure and skipped.
struct P0fFileParser {
    let origin: String
    var entries: [P0fDatabase.Entry] = []
    var classes: [String] = []
    var names: [String] = []
    var inTCPRequest = false
    var inSection = false
    var haveLabel = false
    var needSys = false
    var labelNumber = 0
    var generic = false
    var osClass: String? = nil
    var name = ""
    var flavor: String? = nil
    var pendingSource: String? = nil
    var labelSource: String? = nil
    var line = 0

    init(origin: String) { self.origin = origin }

    func fail(_ column: Int, _ message: String) -> P0fDatabase.LoadError {
        P0fDatabase.LoadError(file: origin, line: line, column: column, message: message)
    }

    mutating func parse(_ text: String) throws(P0fDatabase.LoadError) {
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            line += 1
            let bytes = Array(raw.utf8)
            var i = 0
            while i < bytes.count && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
            var end = bytes.count
            if end > i && bytes[end - 1] == 0x0d { end -= 1 }
            if i == end { continue }
            if bytes[i] == UInt8(ascii: ";") {
                let comment = String(decoding: bytes[(i + 1)..<end], as: UTF8.self)
                let trimmed = comment.drop { $0 == " " }
                if trimmed.hasPrefix("source:") {
                    pendingSource = String(trimmed.dropFirst("source:".count).drop { $0 == " " })
                }
                continue
            }
            try parseLine(Array(bytes[i..<end]), column: i + 1)
        }
    }

    mutating func parseLine(_ l: [UInt8], column: Int) throws(P0fDatabase.LoadError) {
        if l[0] == UInt8(ascii: "[") {
            let s = String(decoding: l, as: UTF8.self)
            inSection = true
            haveLabel = false
            needSys = false
            if s == "[mtu]" { inTCPRequest = false; return }
            guard let colon = s.firstIndex(of: ":") else { throw fail(column, "malformed section identifier '\(s)'") }
            let module = s[s.index(after: s.startIndex)..<colon]
            let dir = s[s.index(after: colon)...]
            guard module == "tcp" || module == "http" else {
                throw fail(column + 1, "unrecognized fingerprinting module '\(module)'")
            }
            guard dir == "request]" || dir == "response]" else {
                throw fail(column + s.distance(from: s.startIndex, to: colon) + 1, "unrecognized traffic direction '\(dir)'")
            }
            inTCPRequest = module == "tcp" && dir == "request]"
            return
        }
        var k = 0
        while k < l.count && (isAlpha(l[k]) || l[k] == UInt8(ascii: "_")) { k += 1 }
        let key = String(decoding: l[0..<k], as: UTF8.self)
        var v = k
        while v < l.count && (l[v] == 0x20 || l[v] == 0x09) { v += 1 }
        guard k > 0, v < l.count, l[v] == UInt8(ascii: "=") else { throw fail(column, "expected 'name = value'") }
        v += 1
        while v < l.count && (l[v] == 0x20 || l[v] == 0x09) { v += 1 }
        let value = Array(l[v...])
        let valueColumn = column + v
        switch key {
        case "classes":
            guard !inSection else { throw fail(column, "misplaced 'classes' (must come before any section)") }
            for part in String(decoding: value, as: UTF8.self).split(separator: ",") {
                let c = part.trimmingSpaces
                guard !c.isEmpty, c.utf8.allSatisfy({ isAlnum($0) }) else { throw fail(valueColumn, "malformed class entry '\(part)'") }
                classes.append(String(c))
            }
        case "ua_os":
            return
        case "label":
            guard inSection else { throw fail(column, "misplaced 'label' (outside a section)") }
            try parseLabel(value, column: valueColumn)
        case "sys":
            guard needSys else { throw fail(column, "misplaced 'sys' (only after an application label)") }
            needSys = false
        case "sig":
            guard haveLabel, !needSys else { throw fail(column, "misplaced 'sig' (needs a label first, and 'sys' after an application label)") }
            if inTCPRequest {
                var e = try parseTCPSignature(value, column: valueColumn)
                e.source = labelSource
                entries.append(e)
            }
        default:
            throw fail(column, "unrecognized field '\(key)'")
        }
    }

    mutating func parseLabel(_ value: [UInt8], column: Int) throws(P0fDatabase.LoadError) {
        let s = String(decoding: value, as: UTF8.self)
        guard inTCPRequest else { haveLabel = true; needSys = s.contains(":!:"); return }
        guard value.count >= 2, value[0] == UInt8(ascii: "g") || value[0] == UInt8(ascii: "s"), value[1] == UInt8(ascii: ":") else {
            throw fail(column, "malformed label (expected 's:' or 'g:')")
        }
        generic = value[0] == UInt8(ascii: "g")
        var i = 2
        var j = i
        while j < value.count && (isAlnum(value[j]) || value[j] == UInt8(ascii: "!")) { j += 1 }
        guard j > i, j < value.count, value[j] == UInt8(ascii: ":") else { throw fail(column + i, "malformed class in label") }
        let cls = String(decoding: value[i..<j], as: UTF8.self)
        if cls == "!" {
            osClass = nil
        } else {
            guard let c = classes.first(where: { $0.lowercased() == cls.lowercased() }) else {
                throw fail(column + i, "unknown class '\(cls)' (declare it in 'classes = ...')")
            }
            osClass = c
        }
        i = j + 1
        j = i
        let nameChars = Array(" ./-_!?()".utf8)
        while j < value.count && (isAlnum(value[j]) || nameChars.contains(value[j])) { j += 1 }
        guard j > i, j < value.count, value[j] == UInt8(ascii: ":") else { throw fail(column + i, "malformed name in label") }
        let rawName = String(decoding: value[i..<j], as: UTF8.self)
        if let known = names.first(where: { $0.lowercased() == rawName.lowercased() }) {
            name = known
        } else {
            names.append(rawName)
            name = rawName
        }
        flavor = j + 1 < value.count ? String(decoding: value[(j + 1)...], as: UTF8.self) : nil
        labelNumber += 1
        haveLabel = true
        needSys = osClass == nil
        labelSource = pendingSource
        pendingSource = nil
    }

    /// tcp_register_sig()'s grammar: `ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass`.
    func parseTCPSignature(_ v: [UInt8], column: Int) throws(P0fDatabase.LoadError) -> P0fDatabase.Entry {
        var c = 0
        func at(_ i: Int) -> UInt8 { i < v.count ? v[i] : 0 }
        func digitsEnd(_ i: Int) -> Int { var n = i; while isDigit(at(n)) { n += 1 }; return n }
        /// atol(): leading digits as a number (0 when there are none).
        func number(_ i: Int) -> Int {
            var n = i, r = 0
            while isDigit(at(n)) && r < 1_000_000 { r = r * 10 + Int(at(n) - 48); n += 1 }
            return r
        }
        func err(_ i: Int, _ m: String) -> P0fDatabase.LoadError { fail(column + i, m) }

        let ver: Int
        switch at(0) {
        case UInt8(ascii: "4"): ver = 4
        case UInt8(ascii: "6"): ver = 6
        case UInt8(ascii: "*"): ver = -1
        default: throw err(0, "unrecognized IP version (expected 4, 6 or *)")
        }
        guard at(1) == UInt8(ascii: ":") else { throw err(1, "malformed signature: ':' expected after the IP version") }
        c = 2
        // Initial TTL: "64", "64-" (random TTL) or "64+N".
        var nxt = digitsEnd(c)
        guard [UInt8(ascii: ":"), UInt8(ascii: "+"), UInt8(ascii: "-")].contains(at(nxt)) else {
            throw err(nxt, "malformed initial TTL")
        }
        var ittl = number(c)
        guard ittl >= 1 && ittl <= 255 else { throw err(c, "bogus initial TTL \(ittl)") }
        var badTTL = false
        c = nxt + 1
        if at(nxt) == UInt8(ascii: "-") && at(nxt + 1) == UInt8(ascii: ":") {
            // p0f steps two more bytes here, over the first character of the option length, which is
            // then read as 0. Kept: the signatures that use "ittl-" all have a one-digit length of 0.
            badTTL = true
            c += 2
        } else if at(nxt) == UInt8(ascii: "+") {
            nxt += 1
            nxt = digitsEnd(nxt)
            guard at(nxt) == UInt8(ascii: ":") else { throw err(nxt, "malformed TTL distance") }
            let add = number(c)
            guard ittl + add <= 255 else { throw err(c, "bogus initial TTL \(ittl)+\(add)") }
            ittl += add
            c = nxt + 1
        }
        // IP option length.
        nxt = digitsEnd(c)
        guard at(nxt) == UInt8(ascii: ":") else { throw err(nxt, "malformed IP option length") }
        let olen = number(c)
        guard olen <= 255 else { throw err(c, "bogus IP option length \(olen)") }
        c = nxt + 1
        // MSS.
        var mss = -1
        if at(c) == UInt8(ascii: "*") && at(c + 1) == UInt8(ascii: ":") {
            c += 2
        } else {
            nxt = digitsEnd(c)
            guard at(nxt) == UInt8(ascii: ":") else { throw err(nxt, "malformed MSS") }
            mss = number(c)
            guard mss <= 65535 else { throw err(c, "bogus MSS \(mss)") }
            c = nxt + 1
        }
        // Window size, then ','.
        let window: P0fDatabase.WindowRule
        if at(c) == UInt8(ascii: "*") && at(c + 1) == UInt8(ascii: ",") {
            window = .any
            c += 2
        } else if at(c) == UInt8(ascii: "%") {
            c += 1
            nxt = digitsEnd(c)
            guard at(nxt) == UInt8(ascii: ",") else { throw err(nxt, "malformed '%' window") }
            let w = number(c)
            guard w >= 2 && w <= 65535 else { throw err(c, "bogus '%' value \(w)") }
            window = .modulo(w)
            c = nxt + 1
        } else if v.count >= c + 4 && (Array(v[c..<(c + 4)]) == Array("mss*".utf8) || Array(v[c..<(c + 4)]) == Array("mtu*".utf8)) {
            let isMSS = at(c + 1) == UInt8(ascii: "s")
            c += 4
            nxt = digitsEnd(c)
            guard at(nxt) == UInt8(ascii: ",") else { throw err(nxt, "malformed MSS/MTU multiplier") }
            let m = number(c)
            guard m >= 1 && m <= 1000 else { throw err(c, "bogus MSS/MTU multiplier \(m)") }
            window = isMSS ? .mssMultiple(m) : .mtuMultiple(m)
            c = nxt + 1
        } else {
            nxt = digitsEnd(c)
            guard at(nxt) == UInt8(ascii: ",") else { throw err(nxt, "malformed window size") }
            let w = number(c)
            guard w <= 65535 else { throw err(c, "bogus window size \(w)") }
            window = .exact(w)
            c = nxt + 1
        }
        // Window scale.
        var scale = -1
        if at(c) == UInt8(ascii: "*") && at(c + 1) == UInt8(ascii: ":") {
            c += 2
        } else {
            nxt = digitsEnd(c)
            guard at(nxt) == UInt8(ascii: ":") else { throw err(nxt, "malformed window scale") }
            scale = number(c)
            guard scale <= 255 else { throw err(c, "bogus window scale \(scale)") }
            c = nxt + 1
        }
        // Option layout.
        var layout = InlineBytes()
        var eolPad = 0
        func hasPrefix(_ p: String) -> Bool {
            let u = Array(p.utf8)
            return v.count >= c + u.count && Array(v[c..<(c + u.count)]) == u
        }
        while at(c) != UInt8(ascii: ":") {
            guard c < v.count else { throw err(c, "truncated signature in the option layout") }
            guard layout.count < P0fSignature.maxOptions else { throw err(c, "too many TCP options") }
            if hasPrefix("eol") {
                layout.append(0)
                c += 3
                guard at(c) == UInt8(ascii: "+") else { throw err(c, "malformed EOL option (expected eol+N)") }
                c += 1
                nxt = digitsEnd(c)
                guard nxt < v.count else { throw err(nxt, "truncated options") }
                guard at(nxt) == UInt8(ascii: ":") else { throw err(nxt, "EOL must be the last option") }
                eolPad = number(c)
                guard eolPad <= 255 else { throw err(c, "bogus EOL padding") }
                c = nxt
            } else if hasPrefix("nop") { layout.append(1); c += 3 }
            else if hasPrefix("mss") { layout.append(2); c += 3 }
            else if hasPrefix("ws") { layout.append(3); c += 2 }
            else if hasPrefix("sok") { layout.append(4); c += 3 }
            else if hasPrefix("sack") { layout.append(5); c += 4 }
            else if hasPrefix("ts") { layout.append(8); c += 2 }
            else if at(c) == UInt8(ascii: "?") {
                c += 1
                nxt = digitsEnd(c)
                guard at(nxt) == UInt8(ascii: ":") || at(nxt) == UInt8(ascii: ",") else { throw err(nxt, "malformed '?' option") }
                let n = number(c)
                guard n <= 255 else { throw err(c, "bogus '?' option \(n)") }
                layout.append(UInt8(n))
                c = nxt
            } else {
                throw err(c, "unrecognized TCP option")
            }
            if at(c) == UInt8(ascii: ":") { break }
            guard at(c) == UInt8(ascii: ",") else { throw err(c, "malformed TCP options (',' or ':' expected)") }
            c += 1
        }
        c += 1
        // Quirks.
        var quirks: P0fQuirks = []
        while at(c) != UInt8(ascii: ":") {
            guard c < v.count else { throw err(c, "truncated signature in the quirks") }
            var found: (P0fQuirks, String)? = nil
            for (q, n) in P0fQuirks.names where hasPrefix(n) { found = (q, n); break }
            guard let (q, n) = found else { throw err(c, "unrecognized quirk") }
            if ver == 6 && [P0fQuirks.df, .nonZeroID, .zeroID, .nonZeroMBZ].contains(q) {
                throw err(c, "'\(n)' is not valid for IPv6")
            }
            if ver == 4 && q == .flow { throw err(c, "'flow' is not valid for IPv4") }
            quirks.insert(q)
            c += n.utf8.count
            if at(c) == UInt8(ascii: ":") { break }
            guard at(c) == UInt8(ascii: ",") else { throw err(c, "malformed quirks (',' or ':' expected)") }
            c += 1
        }
        c += 1
        let rest = c < v.count ? String(decoding: v[c...], as: UTF8.self) : ""
        let pclass: Int
        switch rest {
        case "*": pclass = -1
        case "0": pclass = 0
        case "+": pclass = 1
        default: throw err(c, "malformed payload class (expected 0, + or *)")
        }
        return P0fDatabase.Entry(
            generic: generic, osClass: osClass, name: name, flavor: flavor, lineNumber: line, labelNumber: labelNumber,
            badTTL: badTTL, ipVersion: ver, ttl: ittl, ipOptionsLength: olen, mss: mss, window: window,
            windowScale: scale, optionLayout: layout, eolPadding: eolPad, quirks: quirks, payloadClass: pclass,
            source: nil)
    }
}

@inline(__always) func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
@inline(__always) func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) >= 97 && (b | 0x20) <= 122 }
@inline(__always) func isAlnum(_ b: UInt8) -> Bool { isDigit(b) || isAlpha(b) }

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}

/// Reads a whole text file without Foundation.
func readTextFile(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n > 0 { out.append(contentsOf: buf[0..<n]) }
        if n < buf.count { break }
    }
    return String(decoding: out, as: UTF8.self)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
