import SocketFilter

/// What makes a rule act.
public enum Trigger: Equatable, Sendable, CustomStringConvertible {
    /// `RTM_DELADDR`: an address left an interface; by default the sockets bound to it are the target.
    case addressRemoved
    /// `RTM_NEWLINK` with IFF_UP or IFF_RUNNING cleared (or `RTM_DELLINK`).
    case linkDown
    /// `RTM_NEWLINK` that turns a link up and running.
    case linkUp
    /// Only `POST /v1/kill` with `rule: NAME` (never by itself).
    case request
    /// Every so many seconds.
    case interval(Double)

    public var description: String {
        switch self {
        case .addressRemoved: return "address-removed"
        case .linkDown: return "link-down"
        case .linkUp: return "link-up"
        case .request: return "request"
        case .interval(let s): return "interval \(s)s"
        }
    }
}

public enum RuleAction: String, Equatable, Sendable {
    case kill, audit
}

/// Which network namespaces a rule covers: every one, or those whose name (under /run/netns)
/// matches one of the patterns (`*`, `?`, `[...]` as in fnmatch). `host` names the daemon's own.
public enum NamespaceSelector: Equatable, Sendable, CustomStringConvertible {
    case all
    case patterns([String])

    public func covers(name: String?, isHost: Bool) -> Bool {
        switch self {
        case .all: return true
        case .patterns(let ps):
            for p in ps {
                if p == "host" && isHost { return true }
                if let name, fnmatch(p, name, 0) == 0 { return true }
            }
            return false
        }
    }

    public var description: String {
        switch self {
        case .all: return "all"
        case .patterns(let ps): return ps.joined(separator: ",")
        }
    }
}

/// A socket selection: a filter in the kill language, uid ranges, a cgroup subtree, loopback.
/// Every part given must hold (they are joined with `and`); an empty selection selects everything.
public struct Selection: Equatable, Sendable {
    public var filter: String?
    public var uids: [ClosedRange<UInt32>] = []
    /// A cgroup v2 directory; sockets of processes in it or below it.
    public var cgroup: String?
    /// Sockets whose source or destination is a loopback address.
    public var loopback = false

    public init(filter: String? = nil, uids: [ClosedRange<UInt32>] = [], cgroup: String? = nil, loopback: Bool = false) {
        self.filter = filter
        self.uids = uids
        self.cgroup = cgroup
        self.loopback = loopback
    }

    public var isEmpty: Bool { filter == nil && uids.isEmpty && cgroup == nil && !loopback }

    /// The selection as one filter expression; `cgroupDirectories` lists the cgroup directory and
    /// its descendants (resolved when the rule runs, since the tree changes).
    public func filterText(cgroupDirectories: [String]) -> String? {
        var parts: [String] = []
        if let f = filter, !f.trimmingCharacters(in: .whitespaces).isEmpty { parts.append("( \(f) )") }
        if !uids.isEmpty {
            parts.append("( " + uids.map { $0.lowerBound == $0.upperBound ? "uid = \($0.lowerBound)" : "uid \($0.lowerBound)-\($0.upperBound)" }
                .joined(separator: " or ") + " )")
        }
        // A cgroup that is gone contributes no term; `Rule.filterText` decides what that means.
        if cgroup != nil, !cgroupDirectories.isEmpty {
            parts.append("( " + cgroupDirectories.map { "cgroup \(escape($0))" }.joined(separator: " or ") + " )")
        }
        if loopback { parts.append("( src 127.0.0.0/8 or dst 127.0.0.0/8 or src ::1 or dst ::1 )") }
        return parts.isEmpty ? nil : parts.joined(separator: " and ")
    }

    private func escape(_ s: String) -> String {
        var out = ""
        for c in s { if c == " " || c == "\\" || c == "(" || c == ")" { out.append("\\") }; out.append(c) }
        return out
    }
}

/// One policy rule.
public struct Rule: Equatable, Sendable {
    public var name: String
    public var trigger: Trigger
    /// Interface name pattern for address/link events (`wg*`); nil = any interface.
    public var interface: String?
    public var match: Selection
    public var except: Selection
    public var netns: NamespaceSelector
    public var action: RuleAction
    /// Where the rule starts in its file (for messages).
    public var line: Int

    public init(name: String, trigger: Trigger, interface: String? = nil, match: Selection = Selection(),
                except: Selection = Selection(), netns: NamespaceSelector = .all, action: RuleAction = .kill, line: Int = 0) {
        self.name = name
        self.trigger = trigger
        self.interface = interface
        self.match = match
        self.except = except
        self.netns = netns
        self.action = action
        self.line = line
    }

    /// The rule's whole selection as one filter text, with `eventTerm` (e.g. `src 10.0.0.1`) put
    /// in front: `(event) and (match) and not (except)`. `.some(nil)` means every socket; nil means
    /// none (the rule's cgroup does not exist now).
    public func filterText(eventTerm: String?, cgroupDirectories: (String) -> [String]) -> String?? {
        var parts: [String] = []
        if let eventTerm { parts.append("( \(eventTerm) )") }
        let matchDirs = match.cgroup.map(cgroupDirectories) ?? []
        if match.cgroup != nil && matchDirs.isEmpty { return nil }
        if let m = match.filterText(cgroupDirectories: matchDirs) { parts.append(m) }
        if let e = except.filterText(cgroupDirectories: except.cgroup.map(cgroupDirectories) ?? []) { parts.append("not ( \(e) )") }
        return .some(parts.isEmpty ? nil : parts.joined(separator: " and "))
    }
}

/// A loaded policy: its rules in file order.
public struct Policy: Equatable, Sendable {
    public var rules: [Rule]
    public var path: String

    public init(rules: [Rule], path: String) {
        self.rules = rules
        self.path = path
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
