/// MuonFP TCP fingerprint (draft spec v0.9, CC BY 4.0): `<win>:<opts>:<mss>:<wscale>`, e.g.
/// `64240:2-4-8-1-3:1460:7`.
///
/// - `opts` lists option kinds in on-wire order, NOP and EOL included. EOL ends the option list
///   (RFC 9293), so the padding bytes after it are not options and are not listed. A malformed option
///   is listed (its kind is on the wire) and ends the list.
/// - A value absent on the wire is an empty field; zero is printed as `0`.
///
/// The value itself is packed (the option kinds are `InlineBytes`): building it allocates nothing, and
/// `key` gives a 64-bit hash for counting or grouping; the text is made only when `description` is
/// asked for.
public struct MuonFP: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var window: UInt16
    public var optionKinds: InlineBytes
    public var mss: UInt16?
    public var windowScale: UInt8?

    public init(window: UInt16, optionKinds: InlineBytes, mss: UInt16?, windowScale: UInt8?) {
        self.window = window
        self.optionKinds = optionKinds
        self.mss = mss
        self.windowScale = windowScale
    }

    public init(headers h: SYNHeaders) {
        window = h.window
        var kinds = h.optionKinds
        if let e = h.optionError { kinds.append(e.optionKind) }
        optionKinds = kinds
        mss = h.mss
        windowScale = h.windowScale
    }

    /// A 64-bit hash of window, kinds, MSS and scale (absent values hash apart from zero): equal
    /// fingerprints give equal keys, different ones almost surely different keys. Stable across runs
    /// and processes (unlike `hashValue`), so it can be logged or stored.
    public var key: UInt64 {
        @inline(__always) func mix(_ x: UInt64, _ v: UInt64) -> UInt64 {
            var z = (x ^ v) &* 0x9e37_79b9_7f4a_7c15
            z ^= z >> 32
            return z
        }
        let w = optionKinds.words
        var x = UInt64(window) | UInt64(optionKinds.count) << 16
            | UInt64(mss ?? 0) << 24 | UInt64(mss == nil ? 0 : 1) << 40
            | UInt64(windowScale ?? 0) << 41 | UInt64(windowScale == nil ? 0 : 1) << 49
        x = mix(x, w.0); x = mix(x, w.1); x = mix(x, w.2); x = mix(x, w.3); x = mix(x, w.4)
        return mix(x, 0x5bd1_e995)
    }

    public var description: String {
        ASCIIText.make { w in
            w.number(window)
            w.byte(UInt8(ascii: ":"))
            for (i, k) in optionKinds.enumerated() {
                if i > 0 { w.byte(UInt8(ascii: "-")) }
                w.number(k)
            }
            w.byte(UInt8(ascii: ":"))
            if let m = mss { w.number(m) }
            w.byte(UInt8(ascii: ":"))
            if let ws = windowScale { w.number(ws) }
        }
    }
}

/// A MuonFP rule (spec section 6): per field an exact value, `%` for any value, or empty for "absent";
/// the options field may also be an ordered subsequence with `*` elements (`2-*-3` or `2-*`).
public struct MuonFPPattern: Equatable, Sendable, CustomStringConvertible {
    enum Field<T: Equatable & Sendable>: Equatable, Sendable {
        case any
        case absent
        case value(T)
        func matches(_ v: T?) -> Bool {
            switch self {
            case .any: return true
            case .absent: return v == nil
            case let .value(x): return v == x
            }
        }
    }
    enum Options: Equatable, Sendable {
        case any
        case exact([UInt8])
        /// Elements between `*` must appear in this order, anything may sit where a `*` is.
        case subsequence([UInt8], anchoredStart: Bool, anchoredEnd: Bool)
    }

    let window: Field<UInt16>
    let options: Options
    let mss: Field<UInt16>
    let windowScale: Field<UInt8>
    public let text: String

    public struct SyntaxError: Error, Equatable, CustomStringConvertible {
        public let column: Int
        public let message: String
        public var description: String { "column \(column): \(message)" }
    }

    public init(_ text: String) throws(SyntaxError) {
        self.text = text
        let fields = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 4 else {
            throw SyntaxError(column: 1, message: "a MuonFP pattern has 4 colon-separated fields (win:opts:mss:wscale), found \(fields.count)")
        }
        var col = 1
        func number<T: FixedWidthInteger>(_ s: String, _: T.Type, _ name: String, allowEmpty: Bool) throws(SyntaxError) -> Field<T> {
            if s == "%" { return .any }
            if s.isEmpty {
                if allowEmpty { return .absent }
                throw SyntaxError(column: col, message: "\(name) must not be empty")
            }
            guard let v = T(s) else { throw SyntaxError(column: col, message: "\(name) '\(s)' is not a number in range") }
            return .value(v)
        }
        window = try number(fields[0], UInt16.self, "window", allowEmpty: false)
        col += fields[0].count + 1
        let o = fields[1]
        if o == "%" {
            options = .any
        } else if o.isEmpty {
            options = .exact([])
        } else {
            var items: [UInt8] = []
            var stars: [Int] = []
            for (idx, part) in o.split(separator: "-", omittingEmptySubsequences: false).enumerated() {
                if part == "*" { stars.append(idx); continue }
                guard let k = UInt8(part) else {
                    throw SyntaxError(column: col, message: "option kind '\(part)' is not 0-255 or '*'")
                }
                items.append(k)
            }
            if stars.isEmpty {
                options = .exact(items)
            } else {
                let count = items.count + stars.count
                options = .subsequence(items, anchoredStart: !stars.contains(0), anchoredEnd: !stars.contains(count - 1))
            }
        }
        col += o.count + 1
        mss = try number(fields[2], UInt16.self, "mss", allowEmpty: true)
        col += fields[2].count + 1
        windowScale = try number(fields[3], UInt8.self, "wscale", allowEmpty: true)
    }

    public func matches(_ fp: MuonFP) -> Bool {
        guard window.matches(fp.window), mss.matches(fp.mss), windowScale.matches(fp.windowScale) else { return false }
        switch options {
        case .any: return true
        case let .exact(k): return k.elementsEqual(fp.optionKinds)
        case let .subsequence(items, anchoredStart, anchoredEnd):
            let kinds = fp.optionKinds
            if anchoredStart, let f = items.first, kinds.first != f { return false }
            if anchoredEnd, let l = items.last, kinds.last != l { return false }
            var j = 0
            for k in kinds where j < items.count && k == items[j] { j += 1 }
            return j == items.count
        }
    }

    public var description: String { text }
}
