import APIMachinery
import Controllers
import Foundation
import Glibc
import Logging
import Networking

/// One pod on this node, from its first sync to its removal: the kubelet's pod worker.
///
/// Syncs are serialized (`requestSync` coalesces triggers that arrive during a sync), so the
/// steps below never race each other even though the actor is re-entered at every `await`:
/// set up the sandbox (namespaces, network, the files the kubelet manages), run the init
/// containers one by one, start the regular containers, restart what the policy says with
/// the kubelet's back-off, and write the status whenever it changed. Deletion stops the
/// containers with the stop signal, then SIGKILL after the grace period, removes everything
/// the pod made on the host and finally deletes the object.
actor PodWorker {
    struct ContainerRun {
        var observation: ContainerObservation
        /// The shim's pid while the container runs (it exits once the command runs; set means running).
        var shim: Int32?
        /// PID 1 of the container as numbered on the host: the process to signal, wait for and enter.
        var hostPID1: Int32?
        /// How many runs were started, which names each run's directory.
        var attempts = 0
        var logWriter: ContainerLogWriter?
        var waiter: Task<Void, Never>?
        /// The previous image-pull failure, for the ImagePullBackOff message.
        var imageError: String?
        /// The image's STOPSIGNAL (nginx asks for SIGQUIT, its graceful stop), else SIGTERM.
        var stopSignal: Int32 = SIGTERM
        /// How the current run was started, for commands exec'd into it.
        var process: ContainerSpec.Process?
        var cgroupPaths: [String] = []
        /// Stdin and terminal of a `stdin`/`tty` container, for `kubectl attach`.
        var stdio: AttachableStdio?
    }

    let env: AgentEnvironment
    let uid: String
    let paths: PodPaths
    var pod: JSON
    /// The object is gone from the API (deleted with grace 0, or its namespace went).
    var gone = false
    var context: PodContext?
    var podIP: String?
    var sandboxCreated = false
    var runs: [String: ContainerRun] = [:]
    var backoff = RestartBackoff()
    /// Every container has stopped for good; the sandbox is gone, the status is final.
    var terminal = false
    /// Torn down and, unless it was already gone, deleted: nothing more to do.
    var finished = false
    var syncing = false
    var syncPending = false
    /// Inits already forked into a container's cgroups while the sandbox is made (first start only).
    var early: [String: EarlyInit] = [:]
    var wakeUp: Task<Void, Never>?
    var onFinished: (@Sendable (String) -> Void)?
    /// Step timings of the pod's start, logged at debug level once its first status is written.
    var timings: [(String, ContinuousClock.Instant)] = [("sync", .now)]
    var timingsLogged = false

    func mark(_ step: String) {
        if !timingsLogged { timings.append((step, .now)) }
    }

    init(env: AgentEnvironment, pod: JSON, onFinished: @escaping @Sendable (String) -> Void) {
        self.env = env
        self.uid = pod.uid ?? ""
        self.paths = PodPaths(root: env.podRoot, uid: pod.uid ?? "")
        self.pod = pod
        self.onFinished = onFinished
        let phase = pod[path: "status", "phase"]?.stringValue
        terminal = phase == "Succeeded" || phase == "Failed"
        runs = Self.runsFromPreviousStatus(pod, now: env.now())
    }

    /// A pod that already has a status was running before labnode restarted: its containers were
    /// stopped then (see the README's recovery section), so each one that ran is started again as
    /// a restart, keeping its restart count; a container that had finished stays finished.
    static func runsFromPreviousStatus(_ pod: JSON, now: Double) -> [String: ContainerRun] {
        var runs: [String: ContainerRun] = [:]
        let statuses = (pod[path: "status", "containerStatuses"]?.arrayValue ?? [])
            + (pod[path: "status", "initContainerStatuses"]?.arrayValue ?? [])
        for status in statuses {
            guard let name = status["name"]?.stringValue else { continue }
            let count = Int(status["restartCount"]?.intValue ?? 0)
            var observation = ContainerObservation(name: name, state: .creating, restartCount: count)
            let id = (status["containerID"]?.stringValue ?? "").replacingOccurrences(of: "labnode://", with: "")
            if let running = status[path: "state", "running"] {
                let started = running["startedAt"]?.stringValue.flatMap(Timestamp.parse) ?? now
                observation.lastTermination = ContainerTermination(
                    containerID: id, exitCode: 255, reason: "Unknown",
                    message: "the node agent restarted and the container was stopped", startedAt: started, finishedAt: now)
            } else if let t = status[path: "state", "terminated"] {
                observation.state = .exited(Self.termination(t, id: id))
            } else if let t = status[path: "lastState", "terminated"] {
                observation.lastTermination = Self.termination(t, id: t["containerID"]?.stringValue ?? id)
            }
            runs[name] = ContainerRun(observation: observation)
        }
        return runs
    }

    static func termination(_ t: JSON, id: String) -> ContainerTermination {
        ContainerTermination(containerID: id.replacingOccurrences(of: "labnode://", with: ""),
                             exitCode: Int32(clamping: t["exitCode"]?.intValue ?? 0),
                             reason: t["reason"]?.stringValue, message: t["message"]?.stringValue,
                             startedAt: t["startedAt"]?.stringValue.flatMap(Timestamp.parse) ?? 0,
                             finishedAt: t["finishedAt"]?.stringValue.flatMap(Timestamp.parse) ?? 0)
    }

    // MARK: triggers

    func update(_ newer: JSON) {
        let current = Int64(pod.resourceVersion ?? "") ?? 0
        let incoming = Int64(newer.resourceVersion ?? "") ?? 0
        if incoming >= current { pod = newer }
        requestSync()
    }

    func markGone() {
        gone = true
        requestSync()
    }

    func requestSync() {
        if syncing {
            syncPending = true
            return
        }
        syncing = true
        Task { await self.syncLoop() }
    }

    func syncLoop() async {
        repeat {
            syncPending = false
            await syncOnce()
        } while syncPending
        syncing = false
    }

    /// Runs one more sync at `time` (unix seconds), for a back-off that ends then.
    func scheduleSync(at time: Double) {
        wakeUp?.cancel()
        let delay = max(0, time - env.now())
        wakeUp = Task {
            try? await Task.sleep(for: .milliseconds(Int64(delay * 1000) + 5))
            if !Task.isCancelled { self.requestSync() }
        }
    }

    // MARK: sync

    func syncOnce() async {
        if finished { return }
        if gone || pod.deletionTimestamp != nil {
            await terminate()
            return
        }
        if terminal {
            await writeStatus()
            return
        }
        if !sandboxCreated || context == nil {
            // The early inits fork into their cgroups while the sandbox is being made.
            let (needed, current, known) = (early.isEmpty, pod, runs)
            async let claims = needed ? Self.beginEarlyStarts(pod: current, runs: known, env: env) : [:]
            let ready = await setUpSandbox()
            early.merge(await claims) { old, _ in old }
            guard ready else {
                await writeStatus()
                return
            }
        }
        let spec = pod["spec"] ?? [:]
        var initDone = true
        for container in spec["initContainers"]?.arrayValue ?? [] {
            let sidecar = container["restartPolicy"]?.stringValue == "Always"
            let done = await advance(container, role: sidecar ? .sidecar : .initContainer)
            if !done {
                initDone = false
                break
            }
        }
        if initDone && !terminal {
            for container in spec["containers"]?.arrayValue ?? [] {
                _ = await advance(container, role: .regular)
            }
        }
        if !terminal && allStoppedForGood(spec) {
            terminal = true
        }
        if terminal {
            await stopAll(grace: 0)
            tearDown(removeLogs: false)
        }
        await writeStatus()
    }

    /// Moves one container along; true when the pod may go on to the next container (an init
    /// container finished successfully, a sidecar started, a regular container in any state).
    func advance(_ container: JSON, role: RestartBackoff.ContainerRole) async -> Bool {
        guard let name = container["name"]?.stringValue else { return true }
        let run = runs[name] ?? ContainerRun(observation: ContainerObservation(name: name, state: .creating))
        runs[name] = run
        let policy = pod[path: "spec", "restartPolicy"]?.stringValue ?? "Always"
        let key = RestartBackoff.key(podUID: uid, container: name)
        switch run.observation.state {
        case .running:
            return role != .initContainer
        case .exited(let t):
            if role == .initContainer && t.exitCode == 0 { return true }
            return await restartIfDue(container, termination: t, role: role, policy: policy, key: key)
        case .waiting(let reason, _) where reason == "CrashLoopBackOff":
            guard let t = run.observation.lastTermination else { return false }
            return await restartIfDue(container, termination: t, role: role, policy: policy, key: key)
        case .creating, .waiting:
            await start(container)
            return runs[name].map { if case .running = $0.observation.state { return role != .initContainer } else { return false } } ?? false
        }
    }

    func restartIfDue(_ container: JSON, termination t: ContainerTermination, role: RestartBackoff.ContainerRole,
                      policy: String, key: String) async -> Bool {
        let name = container["name"]?.stringValue ?? ""
        let decision = backoff.decide(key: key, restartPolicy: policy, role: role, exitCode: t.exitCode,
                                      finishedAt: t.finishedAt, now: env.now())
        switch decision {
        case .doNotRestart:
            runs[name]?.observation.state = .exited(t)
            if role == .initContainer && t.exitCode != 0 { terminal = true }
            return role == .regular
        case .backOff(let until, let delay):
            if case .exited = runs[name]?.observation.state {
                env.events.record(pod, component: "kubelet", type: "Warning", reason: "BackOff",
                                  message: KubeletMessages.backOffEvent(container: name, pod: pod))
            }
            runs[name]?.observation.lastTermination = t
            runs[name]?.observation.state = .waiting(reason: "CrashLoopBackOff",
                                                     message: KubeletMessages.crashLoopBackOff(delay: delay, container: name, pod: pod))
            scheduleSync(at: until)
            return role == .regular
        case .restartNow:
            runs[name]?.observation.lastTermination = t
            await start(container)
            return role == .regular
        }
    }

    /// True when nothing will run again: every regular container exited and the policy keeps
    /// it down (`Never`, or `OnFailure` after success), which makes the pod Succeeded or Failed.
    func allStoppedForGood(_ spec: JSON) -> Bool {
        let policy = spec["restartPolicy"]?.stringValue ?? "Always"
        let containers = spec["containers"]?.arrayValue ?? []
        guard !containers.isEmpty else { return false }
        for container in containers {
            guard let name = container["name"]?.stringValue, case .exited(let t)? = runs[name]?.observation.state else { return false }
            if RestartBackoff.shouldRestart(restartPolicy: policy, role: .regular, exitCode: t.exitCode) { return false }
        }
        return true
    }

    /// For a pod's first start, each container's init forks PID 1 into its cgroups right away
    /// (a cgroup v1 move waits out an RCU grace period), overlapping the sandbox setup. Pods
    /// with init containers start in order and skip this.
    nonisolated static func beginEarlyStarts(pod: JSON, runs: [String: ContainerRun], env: AgentEnvironment) -> [String: EarlyInit] {
        let spec = pod["spec"] ?? [:]
        guard (spec["initContainers"]?.arrayValue ?? []).isEmpty else { return [:] }
        var claims: [String: EarlyInit] = [:]
        for container in (spec["containers"]?.arrayValue ?? []).prefix(4) {
            // Interactive containers start on an init of their own (their stdin is not /dev/null).
            guard container["stdin"]?.boolValue != true, container["tty"]?.boolValue != true,
                  let name = container["name"]?.stringValue, (runs[name]?.attempts ?? 0) == 0,
                  runs[name]?.observation.lastTermination == nil,
                  let paths = try? env.cgroups.create(pod: pod.uid ?? "", container: name,
                                                      resources: ContainerTranslation.resources(container: container)),
                  let claimed = try? env.launcher.startEarly(cgroupPaths: paths) else { continue }
            claims[name] = claimed
        }
        return claims
    }

    /// Lets go of early inits that will not be used (the pod is going away, or a step failed).
    func abandonEarly(_ names: [String]? = nil) {
        for name in names ?? Array(early.keys) {
            guard let claimed = early.removeValue(forKey: name) else { continue }
            Task { [launcher = env.launcher] in await launcher.abandon(claimed) }
        }
    }

    // MARK: sandbox

    /// Namespaces, the pod's address on the bridge, and the pod's files. On failure everything
    /// made so far stays for the next attempt (each step is idempotent) and a Warning event says why.
    func setUpSandbox() async -> Bool {
        let hostNetwork = pod[path: "spec", "hostNetwork"]?.boolValue == true
        let namespace = pod.namespace ?? "default"
        // The API reads and the pod's files overlap the namespace and network work (which runs
        // on threads of its own); only /etc/hosts waits for the address.
        async let tokenRequest = Self.serviceAccountToken(pod: pod, client: env.client)
        async let configMapList = env.client.items(Resources.configMaps, namespace: namespace)
        async let secretList = env.client.items(Resources.secrets, namespace: namespace)
        let (current, known, created) = (pod, podIP, sandboxCreated)
        async let addressing = Self.makeSandbox(pod: current, paths: paths, env: env, knownIP: known,
                                                namespacesExist: created, hostNetwork: hostNetwork)
        do {
            let token = try await tokenRequest
            let configMaps = try await configMapList
            let secrets = try await secretList
            mark("api reads")
            let dns = PodDNS.forPod(pod, clusterDNS: env.settings.clusterDNS, clusterDomain: env.settings.clusterDomain,
                                    host: env.hostDNS)
            let inputs = PodFiles.Inputs(dns: dns, podIP: nil, clusterDomain: env.settings.clusterDomain, token: token,
                                         caCertificatePEM: env.settings.caCertificatePEM,
                                         configMaps: Self.byName(configMaps), secrets: Self.byName(secrets))
            let prepared = try PodFiles.prepare(pod: pod, paths: paths, sandbox: SandboxNamespaces(directory: paths.namespaces),
                                                inputs: inputs)
            mark("files")
            let (namespacesMade, address) = await addressing
            sandboxCreated = sandboxCreated || namespacesMade
            podIP = try address.get()
            try PodFiles.writeHosts(pod: pod, podIP: podIP, clusterDomain: env.settings.clusterDomain, paths: paths)
            mark("namespaces and network")
            context = prepared
            return true
        } catch {
            let (namespacesMade, address) = await addressing
            sandboxCreated = sandboxCreated || namespacesMade
            podIP = try? address.get()
            let message = "\(error)"
            env.logger.warning("pod sandbox setup failed", metadata: ["pod": "\(pod.namespace ?? "")/\(pod.name ?? "")", "error": "\(message)"])
            env.events.record(pod, component: "kubelet", type: "Warning", reason: "FailedCreatePodSandBox",
                              message: "Failed to create pod sandbox: \(message)")
            scheduleSync(at: env.now() + 2)
            return false
        }
    }

    /// The sandbox's namespaces (unless they exist) and its address on the bridge (unless it
    /// has one); says whether it made the namespaces, so a failure later still cleans them up.
    nonisolated static func makeSandbox(pod: JSON, paths: PodPaths, env: AgentEnvironment, knownIP: String?,
                                        namespacesExist: Bool, hostNetwork: Bool) async -> (Bool, Result<String, any Error>) {
        var made = false
        do {
            if !namespacesExist {
                try FileManager.default.createDirectory(atPath: paths.directory, withIntermediateDirectories: true)
                _ = try await SandboxSetup.create(directory: paths.namespaces, hostname: PodFiles.hostname(pod))
                made = true
            }
            if hostNetwork { return (made, .success(env.settings.nodeIP)) }
            if let knownIP { return (made, .success(knownIP)) }
            let sandbox = SandboxNamespaces(directory: paths.namespaces)
            let address = try await ContainerLauncher.onDedicatedThread {
                Result { try env.network.attach(podUID: pod.uid ?? "", netnsPath: sandbox.network) }
            }.get()
            return (made, .success(address.address.description))
        } catch {
            return (made, .failure(error))
        }
    }

    static func byName(_ objects: [JSON]) -> [String: JSON] {
        var out: [String: JSON] = [:]
        for o in objects { if let n = o.name { out[n] = o } }
        return out
    }

    /// A bound token for the pod's service account, as the kubelet requests one for the
    /// projected `kube-api-access` volume; nil when the pod opts out.
    static func serviceAccountToken(pod: JSON, client: any APIClient) async throws -> String? {
        if pod[path: "spec", "automountServiceAccountToken"]?.boolValue == false { return nil }
        let uid = pod.uid ?? ""
        let account = pod[path: "spec", "serviceAccountName"]?.stringValue ?? "default"
        let body: JSON = [
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "metadata": ["name": .string(account)],
            "spec": ["expirationSeconds": 3607,
                     "boundObjectRef": ["kind": "Pod", "apiVersion": "v1", "name": .string(pod.name ?? ""), "uid": .string(uid)]],
        ]
        let response = try await client.create(Resources.serviceAccounts, namespace: pod.namespace, body: body,
                                                    options: WriteOptions(), subresource: "token")
        return response[path: "status", "token"]?.stringValue
    }

    // MARK: containers

    func start(_ container: JSON) async {
        guard let name = container["name"]?.stringValue, var run = runs[name], let context else { return }
        // Whatever happens below, an early init is either used by the start or let go.
        var claimed = early.removeValue(forKey: name)
        defer {
            if let unused = claimed { Task { [launcher = env.launcher] in await launcher.abandon(unused) } }
        }
        let imageText = container["image"]?.stringValue ?? ""
        let imageKey = "image/" + RestartBackoff.key(podUID: uid, container: name)

        let image: ResolvedImage
        do {
            image = try await env.images.resolve(imageText)
            mark("image")
            backoff.reset(key: imageKey)
            run.imageError = nil
        } catch {
            let message = "\(error)"
            // The first failure is ErrImagePull; while the back-off runs the reason is ImagePullBackOff.
            if run.imageError == nil {
                run.observation.state = .waiting(reason: "ErrImagePull", message: KubeletMessages.errImagePull(image: imageText, error: message))
                env.events.record(pod, component: "kubelet", type: "Warning", reason: "Failed",
                                  message: "Failed to pull image \(GoQuote.quote(imageText)): \(message)")
            } else {
                run.observation.state = .waiting(reason: "ImagePullBackOff",
                                                 message: KubeletMessages.imagePullBackOff(image: imageText, previousError: run.imageError))
                env.events.record(pod, component: "kubelet", reason: "BackOff", message: "Back-off pulling image \(GoQuote.quote(imageText))")
            }
            run.imageError = message
            runs[name] = run
            let now = env.now()
            if case .backOff(let until, _) = backoff.decide(key: imageKey, restartPolicy: "Always", exitCode: 1,
                                                             finishedAt: now, now: now) {
                scheduleSync(at: until)
            } else {
                scheduleSync(at: now + backoff.initialDelay)
            }
            return
        }
        if run.attempts == 0 {
            env.events.record(pod, component: "kubelet", reason: "Pulled",
                              message: "Container image \(GoQuote.quote(imageText)) already present on machine")
        }

        let sources: PodEnvironment.Sources
        do {
            let namespace = pod.namespace ?? "default"
            sources = PodEnvironment.Sources(
                services: try await env.client.items(Resources.services),
                configMaps: Self.byName(try await env.client.items(Resources.configMaps, namespace: namespace)),
                secrets: Self.byName(try await env.client.items(Resources.secrets, namespace: namespace)))
        } catch {
            configError(name, "\(error)")
            return
        }
        let variables: [(String, String)]
        do {
            variables = try PodEnvironment.make(pod: pod, container: container, sources: sources)
            mark("env")
        } catch {
            configError(name, error.message)
            return
        }

        let ranBefore = run.observation.lastTermination != nil
        let restartCount = run.observation.restartCount + (ranBefore ? 1 : 0)
        run.attempts += 1
        let directories = paths.container(name, attempt: run.attempts)
        var spec: ContainerSpec
        let cgroupPaths: [String]
        do {
            // A new run starts from a fresh writable layer; the previous one is no longer needed.
            try? FileManager.default.removeItem(atPath: paths.containerRoot(name))
            for dir in [directories.upper, directories.work, directories.rootfs] {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            }
            _ = FileManager.default.createFile(atPath: directories.terminationLog, contents: nil)
            cgroupPaths = try env.cgroups.create(pod: uid, container: name,
                                                 resources: ContainerTranslation.resources(container: container))
            spec = try ContainerTranslation.spec(pod: pod, container: container, image: image.config,
                                                 layers: image.layerDirectories, env: variables, context: context,
                                                 run: directories, cgroupPaths: cgroupPaths)
            // No shim stays per container: the agent adopts PID 1 (see `NodeAgent.run`).
            spec.detach = true
        } catch let error as ContainerTranslation.ConfigError {
            runs[name] = run
            configError(name, error.message)
            return
        } catch {
            runs[name] = run
            startFailed(name, restartCount: restartCount, message: "\(error)")
            return
        }

        run.observation.image = (try? ImageReference.normalize(imageText)) ?? imageText
        run.observation.imageID = image.repoDigest
        let containerID = Self.newContainerID()
        do {
            mark("spec")
            let handed = claimed
            claimed = nil
            let state: ContainerState, stdout: Int32, stderr: Int32?
            var stdio: AttachableStdio?
            let tty = container["tty"]?.boolValue == true
            if container["stdin"]?.boolValue == true || tty {
                if let handed { await env.launcher.abandon(handed) }
                let started = try await env.launcher.startInteractive(spec, specPath: directories.spec,
                                                                      stdin: container["stdin"]?.boolValue == true, tty: tty)
                (state, stdout, stderr) = (started.state, started.stdio.output, started.stdio.errors)
                stdio = AttachableStdio(input: started.stdio.input, terminal: started.stdio.terminal,
                                        stdinOnce: container["stdinOnce"]?.boolValue == true)
            } else {
                (state, stdout, stderr) = try await env.launcher.startLogged(spec, specPath: directories.spec, early: handed)
            }
            mark("started \(name)")
            let location = env.logLocation(pod: pod, container: name)
            var writer: ContainerLogWriter?
            do {
                writer = try ContainerLogWriter(location: location, restartCount: restartCount, stdout: stdout, stderr: stderr)
            } catch {
                // The container runs without a log rather than not at all.
                env.logger.warning("container logs unavailable", metadata: ["error": "\(error)"])
                close(stdout)
                if let stderr { close(stderr) }
            }
            guard case .running(let shim, let hostPID1) = state else { return }
            run.observation.restartCount = restartCount
            run.observation.state = .running(containerID: containerID, startedAt: env.now())
            run.shim = shim
            run.hostPID1 = hostPID1
            run.logWriter = writer
            run.stdio = stdio
            run.stopSignal = Self.signalNumber(image.config.stopSignal) ?? SIGTERM
            run.process = spec.process
            run.cgroupPaths = cgroupPaths
            run.waiter = Task { [launcher = env.launcher] in
                let ended = await launcher.waitDetached(shim: shim, pid1: hostPID1)
                if case .exited(let code) = ended { self.exited(name, containerID: containerID, code: code) }
            }
            runs[name] = run
            saveState()
            env.events.record(pod, component: "kubelet", reason: "Created", message: "Created container \(name)")
            env.events.record(pod, component: "kubelet", reason: "Started", message: "Started container \(name)")
        } catch {
            runs[name] = run
            startFailed(name, restartCount: restartCount, message: "\(error)")
        }
    }

    func configError(_ name: String, _ message: String) {
        runs[name]?.observation.state = .waiting(reason: "CreateContainerConfigError", message: message)
        env.events.record(pod, component: "kubelet", type: "Warning", reason: "Failed", message: "Error: \(message)")
        scheduleSync(at: env.now() + 10)
    }

    /// The runtime could not start the process: a terminated run with reason StartError and exit
    /// code 128 (containerd's report), restarted by the policy with back-off like a crash.
    func startFailed(_ name: String, restartCount: Int, message: String) {
        let now = env.now()
        try? env.cgroups.remove(pod: uid, container: name)
        runs[name]?.observation.restartCount = restartCount
        runs[name]?.observation.state = .exited(ContainerTermination(
            containerID: Self.newContainerID(), exitCode: 128, reason: "StartError", message: message,
            startedAt: now, finishedAt: now))
        env.events.record(pod, component: "kubelet", type: "Warning", reason: "Failed", message: "Error: \(message)")
        requestSync()
    }

    /// The shim of this run exited with PID 1's status.
    func exited(_ name: String, containerID: String, code: Int32) {
        guard var run = runs[name], case .running(let id, let startedAt) = run.observation.state, id == containerID else { return }
        let oomKilled = ((try? env.cgroups.stats(pod: uid, container: name))?.oomKills ?? 0) > 0
        try? env.cgroups.remove(pod: uid, container: name)
        run.logWriter?.stop()
        run.logWriter = nil
        run.stdio = nil
        let directories = paths.container(name, attempt: run.attempts)
        var message = (try? String(contentsOfFile: directories.terminationLog, encoding: .utf8)).map { String($0.prefix(4096)) }
        if message?.isEmpty == true { message = nil }
        run.observation.state = .exited(ContainerTermination(
            containerID: id, exitCode: code, signal: code > 128 && code < 160 ? code - 128 : nil, message: message,
            startedAt: startedAt, finishedAt: env.now(), oomKilled: oomKilled))
        run.shim = nil
        run.hostPID1 = nil
        run.waiter = nil
        runs[name] = run
        saveState()
        requestSync()
    }

    /// Kills one run (a failed liveness or startup probe), then lets the sync restart it.
    func kill(container name: String, containerID: String, grace: Int64, message: String) async {
        guard let run = runs[name], case .running(let id, _) = run.observation.state, id == containerID else { return }
        env.events.record(pod, component: "kubelet", reason: "Killing", message: message)
        await stop(names: [name], grace: Double(grace))
    }

    /// Sends each named running container its stop signal, waits up to `grace` seconds, then
    /// SIGKILLs the PID 1 of those still running (which ends their PID namespaces) and waits.
    func stop(names: [String], grace: Double) async {
        var waiters: [Task<Void, Never>] = []
        for name in names {
            guard let run = runs[name], run.shim != nil, let pid1 = run.hostPID1 else { continue }
            _ = Glibc.kill(pid1, grace > 0 ? run.stopSignal : SIGKILL)
            if let w = run.waiter { waiters.append(w) }
        }
        let deadline = env.now() + grace
        while env.now() < deadline && names.contains(where: { runs[$0]?.shim != nil }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for name in names where runs[name]?.shim != nil {
            // SIGKILL to a PID namespace's init ends every process in it.
            if let pid1 = runs[name]?.hostPID1 { _ = Glibc.kill(pid1, SIGKILL) }
        }
        for w in waiters { await w.value }
    }

    func stopAll(grace: Double) async {
        await stop(names: Array(runs.keys), grace: grace)
    }

    // MARK: termination

    func terminate() async {
        let grace: Double
        if gone {
            grace = 2
        } else {
            grace = Double(pod[path: "metadata", "deletionGracePeriodSeconds"]?.intValue
                           ?? pod[path: "spec", "terminationGracePeriodSeconds"]?.intValue ?? 30)
        }
        wakeUp?.cancel()
        let running = runs.filter { $0.value.shim != nil }.map(\.key)
        for name in running {
            env.events.record(pod, component: "kubelet", reason: "Killing", message: "Stopping container \(name)")
        }
        await stop(names: running, grace: grace)
        await env.probes.remove(podUID: uid)
        terminal = true
        tearDown(removeLogs: true)
        if !gone {
            await writeStatus()
            do {
                _ = try await env.client.delete(Resources.pods, namespace: pod.namespace, name: pod.name ?? "",
                                                options: DeleteOptions(preconditionUID: uid, gracePeriodSeconds: 0))
            } catch {
                if error.code != 404 && error.code != 409 {
                    env.logger.warning("could not delete the terminated pod", metadata: ["pod": "\(pod.name ?? "")", "error": "\(error.message)"])
                }
            }
        }
        finished = true
        onFinished?(uid)
    }

    /// Removes what the pod made on the host: its address and veth, its namespaces, its cgroups
    /// and its directory; its logs too when the pod itself is going away.
    func tearDown(removeLogs: Bool) {
        abandonEarly()
        if sandboxCreated {
            let sandbox = SandboxNamespaces(directory: paths.namespaces)
            if pod[path: "spec", "hostNetwork"]?.boolValue != true {
                do { try env.network.detach(podUID: uid, netnsPath: sandbox.network) } catch {
                    env.logger.warning("pod network teardown", metadata: ["uid": "\(uid)", "error": "\(error)"])
                }
            }
        }
        do { try SandboxSetup.destroy(directory: paths.namespaces) } catch {
            env.logger.warning("pod sandbox teardown", metadata: ["uid": "\(uid)", "error": "\(error)"])
        }
        sandboxCreated = false
        context = nil
        try? env.cgroups.removePod(uid)
        try? FileManager.default.removeItem(atPath: paths.directory)
        if removeLogs {
            try? FileManager.default.removeItem(atPath: env.logLocation(pod: pod, container: "").podDirectory)
        }
    }

    // MARK: status

    func writeStatus() async {
        let deleting = gone || pod.deletionTimestamp != nil
        let snapshot = PodRuntimeSnapshot(
            sandboxReady: sandboxCreated && context != nil,
            podIPs: podIP.map { [$0] } ?? [],
            hostIPs: [env.settings.nodeIP],
            containers: runs.values.map(\.observation),
            probes: await env.probes.results(podUID: uid),
            podIsTerminal: terminal || deleting)
        for attempt in 0..<4 {
            let status = PodStatusBuilder.build(pod: pod, runtime: snapshot, now: env.now())
            if status == pod["status"] { return }
            var updated = pod
            updated["status"] = status
            do {
                pod = try await env.client.update(Resources.pods, updated, subresource: "status", manager: "kubelet")
                if !timingsLogged && status["phase"]?.stringValue == "Running" {
                    mark("status")
                    timingsLogged = true
                    var previous = timings[0].1
                    let steps = timings.dropFirst().map { step, at -> String in
                        defer { previous = at }
                        return "\(step) \(Self.milliseconds(at - previous))"
                    }
                    env.logger.debug("pod started", metadata: ["pod": "\(pod.namespace ?? "")/\(pod.name ?? "")",
                                                              "ms": "\(steps.joined(separator: ", "))"])
                }
                if !deleting && !terminal { await env.probes.update(pod: pod) }
                return
            } catch {
                if error.code == 404 {
                    gone = true
                    return
                }
                guard error.code == 409, attempt < 3,
                      let fresh = try? await env.client.get(Resources.pods, namespace: pod.namespace, name: pod.name ?? "", subresource: nil),
                      fresh.uid == uid
                else {
                    env.logger.warning("pod status update failed", metadata: ["pod": "\(pod.name ?? "")", "error": "\(error.message)"])
                    return
                }
                pod = fresh
            }
        }
    }

    // MARK: queries for the agent

    /// PID 1 of the container's current run, for exec.
    func hostPID1(container: String) -> Int32? { runs[container]?.hostPID1 }

    /// A ConfigMap of this pod's namespace changed: refresh the volumes that use it.
    func configMapChanged(_ configMap: JSON) {
        guard sandboxCreated, !terminal, configMap.namespace == (pod.namespace ?? "default"), let name = configMap.name,
              PodFiles.configMapVolumeNames(pod).contains(name) else { return }
        let replaced = PodFiles.refreshConfigMapVolumes(pod: pod, paths: paths, configMaps: [name: configMap])
        if !replaced.isEmpty {
            env.logger.debug("refreshed configMap volume files", metadata: ["pod": "\(pod.namespace ?? "")/\(pod.name ?? "")",
                                                                            "files": "\(replaced.count)"])
        }
    }

    /// What `kubectl exec` or an exec probe needs to run `command` in the container's current
    /// run, and where to put its spec file; nil while the container is not running.
    func execSpec(container: String, command: [String]) -> (spec: ExecSpec, path: String)? {
        guard let run = runs[container], run.shim != nil, let pid1 = run.hostPID1, var process = run.process else { return nil }
        process.args = command
        return (ExecSpec(target: pid1, process: process, cgroupPaths: run.cgroupPaths),
                paths.directory + "/exec-\(UInt64.random(in: 0...UInt64.max)).json")
    }

    /// What `kubectl attach` joins: the running container's output and, for a `stdin` or
    /// `tty` container, its stdin and terminal; nil while it is not running.
    func attachPoint(container: String) -> (output: ContainerLogWriter, stdio: AttachableStdio?)? {
        guard let run = runs[container], run.shim != nil, let writer = run.logWriter else { return nil }
        return (writer, run.stdio)
    }

    /// Whether the container's current run may still write to its log.
    func isWriting(container: String) -> Bool { runs[container]?.logWriter != nil }

    /// The containers' PID 1s, written where a restarted agent finds them: each pid with its
    /// start time, which tells a leftover container from a process that reused the pid.
    func saveState() {
        let containers = runs.values.filter { $0.shim != nil }.compactMap(\.hostPID1)
            .map { "{\"pid\":\($0),\"start\":\(ProcessIdentity.startTime($0) ?? 0)}" }
        let text = "{\"containers\":[" + containers.joined(separator: ",") + "]}"
        try? text.write(toFile: paths.stateFile, atomically: true, encoding: .utf8)
    }

    static func milliseconds(_ d: Duration) -> String {
        let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        return String(format: "%.1f", ms)
    }

    static func newContainerID() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// "SIGQUIT", "QUIT" or "3" as a number, for the signals the shim forwards.
    static func signalNumber(_ name: String?) -> Int32? {
        guard var name = name?.uppercased() else { return nil }
        if let n = Int32(name) { return n }
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        let known: [String: Int32] = ["HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "TERM": SIGTERM,
                                      "USR1": SIGUSR1, "USR2": SIGUSR2, "WINCH": SIGWINCH]
        return known[name]
    }
}
