import Foundation

/// Where the API server is and how to prove who we are, as a pod sees it.
///
/// The kubelet role gives every pod the `kubernetes` Service's address in
/// `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` and mounts the service account's token,
/// the cluster CA and the pod's namespace under `/var/run/secrets/kubernetes.io/serviceaccount`.
/// `load` reads them as client-go's `rest.InClusterConfig` does, so the DNS add-on finds the
/// API server the way CoreDNS does.
public struct InClusterConfig: Sendable, Equatable {
    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    public var host: String
    public var port: Int
    /// The service account's bearer token.
    public var token: String
    /// The cluster CA bundle that signed the API server's serving certificate.
    public var caCertificatePEM: String
    /// The pod's own namespace.
    public var namespace: String
    /// Plain HTTP instead of TLS: only for a test server on loopback or local development. The
    /// token is still sent, in clear text.
    public var insecurePlainHTTP: Bool

    public init(host: String, port: Int, token: String, caCertificatePEM: String, namespace: String = "default",
                insecurePlainHTTP: Bool = false) {
        self.host = host
        self.port = port
        self.token = token
        self.caCertificatePEM = caCertificatePEM
        self.namespace = namespace
        self.insecurePlainHTTP = insecurePlainHTTP
    }

    /// "https://10.96.0.1:443", as error messages name the server.
    public var baseURL: String {
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        return (insecurePlainHTTP ? "http://" : "https://") + authority
    }

    /// Reads the configuration a pod is given.
    ///
    /// The namespace comes from `POD_NAMESPACE` when set, else the mounted `namespace` file,
    /// else "default": the order clientcmd's in-cluster config uses.
    /// - Throws: `InClusterConfigError` naming the variable or file that is missing or wrong.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment,
                            directory: String = serviceAccountDirectory) throws(InClusterConfigError) -> InClusterConfig {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              let portText = environment["KUBERNETES_SERVICE_PORT"], !portText.isEmpty else {
            throw InClusterConfigError(
                code: .notInCluster,
                message: "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined")
        }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw InClusterConfigError(code: .invalidPort,
                                       message: "KUBERNETES_SERVICE_PORT=\"\(portText)\" is not a port number (1-65535)")
        }
        let tokenPath = directory + "/token"
        // A hand-written token file often ends in a newline, which must not reach the header.
        let token = try read(tokenPath, what: "service account token").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else {
            throw InClusterConfigError(code: .emptyToken, message: "the service account token \(tokenPath) is empty")
        }
        let caPath = directory + "/ca.crt"
        let ca = try read(caPath, what: "cluster CA certificate")
        guard ca.contains("-----BEGIN CERTIFICATE-----") else {
            throw InClusterConfigError(code: .invalidCertificate,
                                       message: "the cluster CA certificate \(caPath) holds no PEM certificate")
        }
        var namespace = environment["POD_NAMESPACE"] ?? ""
        if namespace.isEmpty {
            let namespacePath = directory + "/namespace"
            if FileManager.default.fileExists(atPath: namespacePath) {
                namespace = try read(namespacePath, what: "pod namespace").trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        return InClusterConfig(host: host, port: port, token: token, caCertificatePEM: ca,
                               namespace: namespace.isEmpty ? "default" : namespace)
    }

    private static func read(_ path: String, what: String) throws(InClusterConfigError) -> String {
        // Foundation's own wording of a missing file is a bare Cocoa error number on Linux.
        guard FileManager.default.fileExists(atPath: path) else {
            throw InClusterConfigError(
                code: .unreadableFile,
                message: "cannot read the \(what) \(path): no such file (is a service account token mounted into the pod?)")
        }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return String(decoding: data, as: UTF8.self)
        } catch {
            throw InClusterConfigError(code: .unreadableFile, message: "cannot read the \(what) \(path): \(error)")
        }
    }
}

/// Why no usable in-cluster configuration could be built.
public struct InClusterConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The Service environment variables are absent: not running in a pod.
        case notInCluster
        case invalidPort
        case unreadableFile
        case emptyToken
        /// The CA bundle holds no certificate TLS can use.
        case invalidCertificate
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
