import CLinuxUAPI
import Foundation
import TestSupport
import Testing
@testable import Namespaces

/// A process alone in a new, unnamed network namespace (`unshare -n cat`, until released).
func unnamedNamespaceHolder() throws -> Holder {
    let child = try holdChild(["unshare", "-n", "cat"])
    let mine = statInode("/proc/self/ns/net")
    let ready = waitUntil {
        let comm = (try? String(contentsOfFile: "/proc/\(child.pid)/comm", encoding: .utf8)) ?? ""
        let ino = statInode("/proc/\(child.pid)/ns/net")
        return comm == "cat\n" && ino != 0 && ino != mine
    }
    #expect(ready, "unshare -n cat did not enter a new namespace")
    return child
}

@Suite("Namespace discovery") struct DiscoveryTests {
    @Test("--all-netns finds the named, the unnamed and the host's namespace, each once and labelled")
    func discoverAllFindsEveryKind() throws {
        let named = try TestNamespace()
        defer { named.close() }
        // A process inside the named namespace too: it must not make it appear a second time.
        let inNamed = try holdChild(["ip", "netns", "exec", named.name, "cat"])
        defer { inNamed.release() }
        let unnamed = try unnamedNamespaceHolder()
        defer { unnamed.release() }
        #expect(waitUntil { statInode("/proc/\(inNamed.pid)/ns/net") == named.inode })

        let all = try NetworkNamespace.discoverAll()

        #expect(Set(all.map(\.identity)).count == all.count, "duplicates in \(all)")
        let namedHits = all.filter { $0.inode == named.inode }
        #expect(namedHits.count == 1)
        #expect(namedHits.first?.label == named.name)
        #expect(namedHits.first?.path == named.path, "a named path is preferred for opening")

        let unnamedIno = statInode("/proc/\(unnamed.pid)/ns/net")
        let unnamedHits = all.filter { $0.inode == unnamedIno }
        #expect(unnamedHits.count == 1)
        #expect(unnamedHits.first?.name == nil)
        #expect(unnamedHits.first?.label == "ino:\(unnamedIno)")
        #expect(unnamedHits.first?.paths.contains("/proc/\(unnamed.pid)/ns/net") == true)

        let hostIno = hostNamespaceInode()
        let hosts = all.filter(\.isHost)
        #expect(hosts.count == 1)
        #expect(hosts.first?.inode == hostIno)
        #expect(all.first?.isHost == true, "the host's namespace is listed first")

        // Each of the three can be entered through the paths discovery recorded.
        let three = all.filter { $0.isHost || $0.inode == named.inode || $0.inode == unnamedIno }
        let inside = NamespaceRunner.map(three) { _ in threadNamespaceInode() }
        #expect(try inside.map { try $0.get() } == three.map(\.inode))
    }

    @Test("a bind mount of an unnamed namespace is found and opens through the mount")
    func discoverFindsBindMounts() throws {
        let unnamed = try unnamedNamespaceHolder()
        defer { unnamed.release() }
        let dir = NSTemporaryDirectory() + uniqueName("mnt")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = dir + "/net ns"  // a space: mountinfo escapes it as \040
        _ = FileManager.default.createFile(atPath: target, contents: nil)
        sh("mount", "--bind", "/proc/\(unnamed.pid)/ns/net", target)
        defer { sh("umount", target) }

        let ino = statInode(target)
        let hits = try NetworkNamespace.discoverAll().filter { $0.inode == ino }
        #expect(hits.count == 1)
        #expect(hits.first?.path == target, "the bind mount is preferred over /proc paths")
        #expect(hits.first?.label == "ino:\(ino)")

        let resolved = try NetworkNamespace.resolve(target)
        #expect(resolved.inode == ino)
        #expect(resolved.path == target)
        #expect(try NamespaceRunner.run(in: resolved) { threadNamespaceInode() } == ino)
    }

    @Test("mountinfo octal escapes are decoded")
    func mountinfoUnescape() {
        #expect(NamespaceResolver.unescapeMountinfo("/run/a\\040b\\134c") == "/run/a b\\c")
        #expect(NamespaceResolver.unescapeMountinfo("/plain") == "/plain")
        #expect(NamespaceResolver.unescapeMountinfo("/end\\04") == "/end\\04")
    }
}

@Suite("--netns resolution") struct ResolveTests {
    @Test("a name, a path and a pid resolve to the same namespace, labelled by its name")
    func resolveForms() throws {
        let ns = try TestNamespace()
        defer { ns.close() }
        let inside = try holdChild(["ip", "netns", "exec", ns.name, "cat"])
        defer { inside.release() }
        #expect(waitUntil { statInode("/proc/\(inside.pid)/ns/net") == ns.inode })

        let byName = try NetworkNamespace.resolve(ns.name)
        let byPath = try NetworkNamespace.resolve(ns.path)
        let byPID = try NetworkNamespace.resolve(String(inside.pid))
        let byProcPath = try NetworkNamespace.resolve("/proc/\(inside.pid)/ns/net")
        for r in [byName, byPath, byPID, byProcPath] {
            #expect(r.inode == ns.inode)
            #expect(r.label == ns.name)
            #expect(r.path == ns.path)
            #expect(!r.isHost)
        }
        #expect(byPID.paths.contains("/proc/\(inside.pid)/ns/net"))

        let all = try NamespaceResolver().resolveAll([ns.name, ns.path, String(inside.pid), String(getpid())])
        #expect(all.map(\.inode) == [ns.inode, statInode("/proc/self/ns/net")], "repeats of one namespace collapse")

        let mine = try NetworkNamespace.resolve(String(getpid()))
        #expect(mine.inode == statInode("/proc/self/ns/net"))
        #expect(mine.isHost == (mine.inode == hostNamespaceInode()))
    }

    @Test("a namespace file we may not open is a permission error (exit 3), not a missing one")
    func permission() throws {
        // In this sandbox PID 1 holds capabilities we lack, so ptrace access to it is refused; where
        // it is not, resolving it simply works and is the host's namespace.
        if access("/proc/1/ns/net", R_OK) == 0 && statInode("/proc/1/ns/net") != 0 {
            let host = try NetworkNamespace.resolve("1")
            #expect(host.isHost)
        } else {
            let e = #expect(throws: NamespaceError.self) { try NetworkNamespace.resolve("1") }
            #expect(e?.kind == .permissionDenied)
            #expect(e?.exitStatus == 3)
            #expect(e?.description.hasPrefix("open /proc/1/ns/net: Permission denied") == true)
        }
    }

    @Test("a missing name says where it looked")
    func missingName() {
        let name = uniqueName("missing")
        let e = #expect(throws: NamespaceError.self) { try NetworkNamespace.resolve(name) }
        #expect(e?.kind == .notFound)
        #expect(e?.description == "no network namespace named '\(name)' (looked in /run/netns)")
        #expect(e?.exitStatus == 2)
    }

    @Test("a pid with no process")
    func badPID() {
        let e = #expect(throws: NamespaceError.self) { try NetworkNamespace.resolve("99999999") }
        #expect(e?.kind == .notFound)
        #expect(e?.description == "no process with pid 99999999")
    }

    @Test("files that are not network namespaces are refused")
    func notNamespaceFiles() throws {
        let file = NSTemporaryDirectory() + uniqueName("file")
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let e1 = #expect(throws: NamespaceError.self) { try NetworkNamespace.resolve(file) }
        #expect(e1?.kind == .notANetworkNamespace)
        #expect(e1?.description.hasPrefix("'\(file)' is not a network namespace file") == true)
        #expect(e1?.exitStatus == 2)

        let e2 = #expect(throws: NamespaceError.self) { try NetworkNamespace.resolve("/proc/self/ns/uts") }
        #expect(e2?.kind == .notANetworkNamespace)
        #expect(e2?.description.contains("uts namespace") == true)

        let e3 = #expect(throws: NamespaceError.self) { try NetworkNamespace.resolve(file + ".none") }
        #expect(e3?.kind == .notFound)

        for bad in ["", ".", ".."] {
            let e = #expect(throws: NamespaceError.self) { try NetworkNamespace.resolve(bad) }
            #expect(e?.kind == .invalidSpec)
        }
    }

    @Test("a namespace deleted after it was resolved is reported as vanished")
    func vanished() throws {
        let ns = try TestNamespace()
        let resolved = try NetworkNamespace.resolve(ns.name)
        ns.close()
        let e = #expect(throws: NamespaceError.self) { try resolved.open() }
        #expect(e?.kind == .vanished)
    }
}

@Suite("Namespace discovery, threads") struct DiscoveryThreadTests {
    @Test("a namespace only one thread has entered is found with includeThreads, via its task path")
    func threadOnlyNamespace() async throws {
        // Hold a namespace through a runner thread only: resolve it, delete its name, keep the thread in it.
        let ns = try TestNamespace()
        let target = try NetworkNamespace.resolve(ns.name)
        let ino = ns.inode
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var tid: Int32 = 0
        let holder = Task.detached {
            try NamespaceRunner.run(in: target) {
                tid = sockctl_gettid()
                entered.signal()
                release.wait()  // blocks until the test is done looking
            }
        }
        entered.wait()
        ns.close()  // now only the thread holds it

        let without = try NetworkNamespace.discoverAll().filter { $0.inode == ino }
        let with = try NetworkNamespace.discoverAll(includeThreads: true).filter { $0.inode == ino }
        release.signal()
        try await holder.value

        #expect(without.isEmpty)
        #expect(with.count == 1)
        #expect(with.first?.paths == ["/proc/\(getpid())/task/\(tid)/ns/net"])
        #expect(with.first?.label == "ino:\(ino)")
    }
}

@Suite("Named namespaces directory") struct NetnsDirectoryTests {
    @Test("one namespace under two names: labelled by the first in byte order, listed once")
    func twoNames() throws {
        let unnamed = try unnamedNamespaceHolder()
        defer { unnamed.release() }
        let dir = NSTemporaryDirectory() + uniqueName("netnsdir")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["zeta", "alpha"] {
            _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: nil)
            sh("mount", "--bind", "/proc/\(unnamed.pid)/ns/net", dir + "/" + name)
        }
        defer { for name in ["zeta", "alpha"] { sh("umount", dir + "/" + name) } }
        _ = FileManager.default.createFile(atPath: dir + "/stale", contents: nil)  // what `ip netns` leaves behind

        let resolver = NamespaceResolver(netnsDirectory: dir)
        let byZeta = try resolver.resolve("zeta")
        #expect(byZeta.label == "alpha")
        #expect(byZeta.paths.first == dir + "/alpha")

        let ino = statInode("/proc/\(unnamed.pid)/ns/net")
        let hits = try resolver.discover().namespaces.filter { $0.inode == ino }
        #expect(hits.count == 1)
        #expect(hits.first?.label == "alpha")
        #expect(Array(hits.first?.paths.prefix(2) ?? []) == [dir + "/alpha", dir + "/zeta"])

        // The daemon's scan of the directory: the same namespace once, under its first name; the
        // stale file is not a namespace.
        let named = resolver.named()
        #expect(named.count == 1)
        #expect(named.first?.inode == ino)
        #expect(named.first?.label == "alpha")
        #expect(named.first?.paths == [dir + "/alpha"])
        #expect(named.first?.isHost == false)

        let e = #expect(throws: NamespaceError.self) { try resolver.resolve("stale") }
        #expect(e?.kind == .notFound)
        #expect(e?.description == "no network namespace named 'stale' (\(dir)/stale exists but no namespace is mounted on it)")
    }
}
