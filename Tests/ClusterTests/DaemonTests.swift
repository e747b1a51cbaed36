import Testing
@testable import Cluster

/// `labnode down` stops the pid in the pid file only if that process is a labnode daemon: a
/// recycled pid of another program is left alone, a renamed copy of the binary is not.
@Suite struct DaemonTests {
    @Test func recognisesTheDaemonByNameOrByHowUpStartsIt() {
        #expect(Daemon.isDaemon(commandLine: ["/usr/local/bin/labnode", "up", "--data-dir", "/var/lib/labnode", "--progress-fd", "3"]))
        #expect(Daemon.isDaemon(commandLine: ["labnode"]))
        #expect(Daemon.isDaemon(commandLine: ["/work/copies/base", "up", "--data-dir", "/tmp/x", "--progress-fd", "3", ""]))
        #expect(!Daemon.isDaemon(commandLine: ["/usr/sbin/sshd", "-D"]))
        #expect(!Daemon.isDaemon(commandLine: ["/bin/sleep", "100"]))
        #expect(!Daemon.isDaemon(commandLine: []))
    }
}
