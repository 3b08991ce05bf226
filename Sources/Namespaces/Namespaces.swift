// # Namespaces
//
// Network namespace discovery and resolution, work inside a namespace on a dedicated thread,
// interface names per namespace, and the socket inode -> process index (`-p`).
//
// Typical use by a command:
//
// ```swift
// let targets = allNetns ? try NetworkNamespace.discoverAll()
//                        : try specs.map(NetworkNamespace.resolve)      // --netns NAME|PATH|PID
// let owners = wantProcesses ? try ProcessIndex.start(threads: 2) : nil // overlaps with the dumps
// try NamespaceRunner.stream(targets, produce: { ns, emit in
//     let ifnames = try Interfaces.names()          // this namespace's ifindex -> name
//     let sock = try NetlinkSocket(family: NETLINK_SOCK_DIAG)  // opened inside ns
//     for batch in dump(sock) { try emit(batch) }   // emit per recv batch, not per socket
// }, consume: { ns, event in
//     // runs on the caller's thread, namespaces in order: print with ns.label as `netns`,
//     // try owners?.wait().owners(of: inode) for `processes`
// })
// ```
//
// Decisions worth knowing:
// - Labels follow DESIGN.md: the /run/netns name, otherwise `ino:N`. The host's namespace is not
//   renamed `host` (a namespace may be named "host"); `NetworkNamespace.isHost` marks it, found
//   through /proc/1/ns/net, or where PID 1 is closed to us, the kernel's fixed initial inode
//   NET_NS_INIT_INO (0xEFFFFFF9, Linux 6.18+).
// - `--netns 123` is a pid; a namespace *named* "123" is reached as /run/netns/123 (the error for
//   a missing pid says so when such a name exists).
// - Values hold paths, not fds; `open()` re-checks (st_dev, st_ino), so a recycled pid is never
//   entered by mistake (`.vanished` instead).
// - Exit statuses: `NamespaceError.exitStatus` gives DESIGN.md's 2 (usage: not found, not a
//   network namespace, malformed), 3 (permission, kernel support), 4 (other failures).
