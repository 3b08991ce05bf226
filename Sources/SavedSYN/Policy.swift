import Yams

/// Rules over SYN facts, loaded from YAML:
///
/// ```yaml
/// default: allow            # allow (the default) or deny
/// rules:
///   - name: no-scanners
///     match:
///       os: "NMap*"                 # glob over the OS/tool label ("unknown" when nothing matched)
///       fingerprint: "1024:2:1460:" # MuonFP pattern: exact, % wildcards, 2-*-3 subsequences
///       ttl: "<= 64"                # number, "N-M", or "< <= > >= = != N"
///       mss: 1460
///       wscale: "0-14"
///       options: "mss,sok,ts,nop,ws" # glob over p0f's option layout text
///       distance: "> 20"
///       quirks: [df, "!ecn"]        # p0f quirk names that must be present, "!" = must be absent
///     action: deny                  # allow | deny | tag
///   - name: mark-windows
///     match: { os: "Windows*" }
///     action: tag
///     tag: windows
/// ```
///
/// Rules are tried in order: `tag` rules add their tag and go on, the first `allow` or `deny` rule
/// that matches decides. Nothing decided: `default`.
public struct SYNPolicy: Sendable {
    public enum Action: String, Sendable, Equatable { case allow, deny, tag }

    public struct Rule: Sendable {
        public var name: String
        public var action: Action
        public var tag: String?
        var conditions: [Condition]
        /// Where the rule starts in its file.
        public var line: Int
    }

    public struct Decision: Equatable, Sendable {
        /// `.allow` or `.deny`.
        public var action: Action
        public var tags: [String]
        /// The rule that decided, nil for the default.
        public var rule: String?
    }

    /// A config error: file:line:column and what is wrong.
    public typealias LoadError = FileLoadError

    public var rules: [Rule]
    public var defaultAction: Action

    public init(rules: [Rule] = [], defaultAction: Action = .allow) {
        self.rules = rules
        self.defaultAction = defaultAction
    }

    public init(contentsOf path: String) throws(LoadError) {
        guard let text = readTextFile(path) else { throw LoadError(file: path, line: 0, column: 0, message: "cannot read the file") }
        try self.init(yaml: text, file: path)
    }

    public init(yaml: String, file: String = "<policy>") throws(LoadError) {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let e as YamlError {
            throw Self.yamlError(e, file: file)
        } catch {
            throw LoadError(file: file, line: 0, column: 0, message: "\(error)")
        }
        let loader = PolicyLoader(file: file)
        guard let root else { throw LoadError(file: file, line: 1, column: 1, message: "empty policy: expected a mapping with 'rules'") }
        let (rules, def) = try loader.load(root)
        self.rules = rules
        self.defaultAction = def
    }

    static func yamlError(_ e: YamlError, file: String) -> LoadError {
        switch e {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            return LoadError(file: file, line: mark.line, column: mark.column, message: "YAML: \(problem)")
        default:
            return LoadError(file: file, line: 0, column: 0, message: "YAML: \(e)")
        }
    }

    /// Applies the rules to one fingerprint.
    public func evaluate(_ fp: SYNFingerprint) -> Decision {
        var tags: [String] = []
        for r in rules where r.conditions.allSatisfy({ $0.matches(fp) }) {
            switch r.action {
            case .tag:
                if let t = r.tag, !tags.contains(t) { tags.append(t) }
            case .allow, .deny:
                return Decision(action: r.action, tags: tags, rule: r.name)
            }
        }
        return Decision(action: defaultAction, tags: tags, rule: nil)
    }
}

/// One `match:` key.
enum Condition: Sendable {
    case os(Glob)
    case fingerprint(MuonFPPattern)
    case ttl(NumberTest)
    case mss(NumberTest)
    case wscale(NumberTest)
    case options(Glob)
    case distance(NumberTest)
    case quirks(present: P0fQuirks, absent: P0fQuirks)

    func matches(_ fp: SYNFingerprint) -> Bool {
        switch self {
        case let .os(g): return g.matches(fp.os ?? "unknown")
        case let .fingerprint(p): return p.matches(fp.muonFP)
        case let .ttl(t): return t.matches(Int(fp.p0f.ttl))
        case let .mss(t): return fp.headers.mss.map { t.matches(Int($0)) } ?? false
        case let .wscale(t): return fp.headers.windowScale.map { t.matches(Int($0)) } ?? false
        case let .options(g): return g.matches(fp.p0f.optionLayoutText)
        case let .distance(t): return t.matches(fp.facts.distance)
        case let .quirks(p, a): return fp.p0f.quirks.isSuperset(of: p) && fp.p0f.quirks.isDisjoint(with: a)
        }
    }
}

/// A number test: `N`, `N-M`, or an operator and a number.
struct NumberTest: Sendable, Equatable {
    enum Op: String, Sendable { case eq = "=", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">=" }
    var op: Op
    var value: Int
    var upper: Int?

    init?(_ text: String) {
        let s = text.trimmingCharacters(" ")
        for op in [Op.le, .ge, .ne, .lt, .gt, .eq] where s.hasPrefix(op.rawValue) {
            guard let v = Int(s.dropFirst(op.rawValue.count).trimmingCharacters(" ")) else { return nil }
            self.op = op; value = v; upper = nil
            return
        }
        if let v = Int(s) { op = .eq; value = v; upper = nil; return }
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = Int(parts[0].trimmingCharacters(" ")), let b = Int(parts[1].trimmingCharacters(" ")), a <= b else { return nil }
        op = .eq; value = a; upper = b
    }

    func matches(_ x: Int) -> Bool {
        if let u = upper { return x >= value && x <= u }
        switch op {
        case .eq: return x == value
        case .ne: return x != value
        case .lt: return x < value
        case .le: return x <= value
        case .gt: return x > value
        case .ge: return x >= value
        }
    }
}

/// Shell-style glob with `*` and `?`, case-insensitive.
struct Glob: Sendable, Equatable {
    let pattern: [Character]
    init(_ s: String) { pattern = Array(s.lowercased()) }

    func matches(_ text: String) -> Bool {
        let t = Array(text.lowercased())
        var p = 0, i = 0, star = -1, mark = 0
        while i < t.count {
            if p < pattern.count && (pattern[p] == "?" || pattern[p] == t[i]) {
                p += 1; i += 1
            } else if p < pattern.count && pattern[p] == "*" {
                star = p; mark = i; p += 1
            } else if star >= 0 {
                p = star + 1; mark += 1; i = mark
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}

extension StringProtocol {
    func trimmingCharacters(_ c: Character) -> String {
        var s = Substring(self)
        while s.first == c { s = s.dropFirst() }
        while s.last == c { s = s.dropLast() }
        return String(s)
    }
}

struct PolicyLoader {
    let file: String

    func error(_ node: Node?, _ message: String) -> SYNPolicy.LoadError {
        SYNPolicy.LoadError(file: file, line: node?.mark?.line ?? 0, column: node?.mark?.column ?? 0, message: message)
    }

    func scalar(_ n: Node, _ what: String) throws(SYNPolicy.LoadError) -> String {
        guard case let .scalar(s) = n else { throw error(n, "\(what) must be a single value") }
        return s.string
    }

    func load(_ root: Node) throws(SYNPolicy.LoadError) -> ([SYNPolicy.Rule], SYNPolicy.Action) {
        guard case let .mapping(m) = root else { throw error(root, "a policy is a mapping with 'rules' (and optionally 'default')") }
        var rules: [SYNPolicy.Rule] = []
        var def = SYNPolicy.Action.allow
        for (k, v) in m {
            let key = try scalar(k, "a key")
            switch key {
            case "default":
                let s = try scalar(v, "'default'")
                guard let a = SYNPolicy.Action(rawValue: s), a != .tag else { throw error(v, "'default' must be allow or deny, not '\(s)'") }
                def = a
            case "rules":
                guard case let .sequence(seq) = v else { throw error(v, "'rules' must be a list") }
                for item in seq { rules.append(try rule(item)) }
            default:
                throw error(k, "unknown key '\(key)' (expected 'rules' or 'default')")
            }
        }
        return (rules, def)
    }

    func rule(_ n: Node) throws(SYNPolicy.LoadError) -> SYNPolicy.Rule {
        guard case let .mapping(m) = n else { throw error(n, "a rule is a mapping with name, match, action") }
        var name: String? = nil
        var action: SYNPolicy.Action? = nil
        var tag: String? = nil
        var tagNode: Node? = nil
        var conditions: [Condition] = []
        for (k, v) in m {
            let key = try scalar(k, "a key")
            switch key {
            case "name": name = try scalar(v, "'name'")
            case "action":
                let s = try scalar(v, "'action'")
                guard let a = SYNPolicy.Action(rawValue: s) else { throw error(v, "unknown action '\(s)' (expected allow, deny or tag)") }
                action = a
            case "tag": tag = try scalar(v, "'tag'"); tagNode = v
            case "match":
                guard case let .mapping(mm) = v else { throw error(v, "'match' must be a mapping of conditions") }
                for (ck, cv) in mm { conditions.append(try condition(ck, cv)) }
            default:
                throw error(k, "unknown rule key '\(key)' (expected name, match, action, tag)")
            }
        }
        guard let action else { throw error(n, "rule\(name.map { " '\($0)'" } ?? "") has no 'action'") }
        if action == .tag && tag == nil { throw error(n, "a 'tag' rule needs 'tag: NAME'") }
        if action != .tag && tag != nil { throw error(tagNode, "'tag' only goes with 'action: tag'") }
        return SYNPolicy.Rule(name: name ?? "rule at line \(n.mark?.line ?? 0)", action: action, tag: tag,
                              conditions: conditions, line: n.mark?.line ?? 0)
    }

    func condition(_ k: Node, _ v: Node) throws(SYNPolicy.LoadError) -> Condition {
        let key = try scalar(k, "a condition name")
        func num(_ what: String) throws(SYNPolicy.LoadError) -> NumberTest {
            let s = try scalar(v, "'\(what)'")
            guard let t = NumberTest(s) else { throw error(v, "'\(what)': '\(s)' is not a number, a range N-M, or an operator (< <= > >= = !=) and a number") }
            return t
        }
        switch key {
        case "os": return .os(Glob(try scalar(v, "'os'")))
        case "options": return .options(Glob(try scalar(v, "'options'")))
        case "fingerprint":
            let s = try scalar(v, "'fingerprint'")
            do {
                return .fingerprint(try MuonFPPattern(s))
            } catch {
                throw SYNPolicy.LoadError(file: file, line: v.mark?.line ?? 0, column: (v.mark?.column ?? 0) + error.column - 1,
                                          message: "'fingerprint': \(error.message)")
            }
        case "ttl": return .ttl(try num("ttl"))
        case "mss": return .mss(try num("mss"))
        case "wscale": return .wscale(try num("wscale"))
        case "distance": return .distance(try num("distance"))
        case "quirks":
            var items: [Node] = []
            switch v {
            case .sequence(let s): items = Array(s)
            case .scalar: items = [v]
            default: throw error(v, "'quirks' must be a quirk name or a list of them")
            }
            var present: P0fQuirks = [], absent: P0fQuirks = []
            for item in items {
                var s = try scalar(item, "a quirk")
                let negate = s.hasPrefix("!")
                if negate { s.removeFirst() }
                guard let q = P0fQuirks.names.first(where: { $0.1 == s })?.0 else {
                    throw error(item, "unknown quirk '\(s)' (known: \(P0fQuirks.names.map(\.1).joined(separator: " ")))")
                }
                if negate { absent.insert(q) } else { present.insert(q) }
            }
            return .quirks(present: present, absent: absent)
        default:
            throw error(k, "unknown condition '\(key)' (expected os, fingerprint, ttl, mss, wscale, options, distance, quirks)")
        }
    }
}

/// An error in a file SavedSYN loads (a p0f.fp database, a YAML policy): where, and what is wrong.
public struct FileLoadError: Error, Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String
    public var description: String { "\(file):\(line):\(column): \(message)" }
}
