import Testing

// Real request bodies recorded from kubectl against a loopback fake server (tools/capture in the
// types dev package). For each command: the protobuf body kubectl 1.32 and 1.33 sent (the two were
// byte-identical) and the JSON body kubectl 1.31 sent for the same command. Decoding the first
// must give the second, up to JSON nulls and the position of apiVersion/kind.

struct ProtobufKubectlCapture: Sendable, CustomTestStringConvertible {
    let name: String
    let command: String
    /// Hex digits; whitespace is ignored.
    let protobufHex: String
    let json: String

    var testDescription: String { name }
}

enum ProtobufKubectlCaptures {
    static let all: [ProtobufKubectlCapture] = [
        ProtobufKubectlCapture(
            name: "deploy-replicas-port",
            command: "kubectl create deployment web --image=nginx --replicas=2 --port=80",
            protobufHex: """
            6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b8010a1f0a0377656212001a0022002a00320038
            0042005a0a0a0361707012037765621286010802120c0a0a0a0361707012037765621a6c0a1c0a0012001a0022002a00
            3200380042005a0a0a036170701203776562124c122e0a056e67696e7812056e67696e782a00320a0a00100018502200
            2a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c20100
            22020a00280038001a0c0800100018002000280038001a002200
            """,
            json: #"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"app":"web"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx","ports":[{"containerPort":80}],"resources":{}}]}},"strategy":{}},"status":{}}"#
        ),
        ProtobufKubectlCapture(
            name: "deploy-command",
            command: "kubectl create deployment cmd --image=busybox -- sleep 3600",
            protobufHex: """
            6b3873000a150a07617070732f7631120a4465706c6f796d656e7412bd010a1f0a03636d6412001a0022002a00320038
            0042005a0a0a036170701203636d64128b010801120c0a0a0a036170701203636d641a710a1c0a0012001a0022002a00
            3200380042005a0a0a036170701203636d64125112330a0762757379626f78120762757379626f781a05736c6565701a
            04333630302a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a
            0100c2010022020a00280038001a0c0800100018002000280038001a002200
            """,
            json: #"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"cmd","creationTimestamp":null,"labels":{"app":"cmd"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"cmd"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"cmd"}},"spec":{"containers":[{"name":"busybox","image":"busybox","command":["sleep","3600"],"resources":{}}]}},"strategy":{}},"status":{}}"#
        ),
        ProtobufKubectlCapture(
            name: "deploy-zero",
            command: "kubectl create deployment idle --image=nginx --replicas=0",
            protobufHex: """
            6b3873000a150a07617070732f7631120a4465706c6f796d656e7412af010a210a0469646c6512001a0022002a003200
            380042005a0b0a03617070120469646c65127c0800120d0a0b0a03617070120469646c651a610a1d0a0012001a002200
            2a003200380042005a0b0a03617070120469646c65124012220a056e67696e7812056e67696e782a0042006a00720080
            0100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a
            0c0800100018002000280038001a002200
            """,
            json: #"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"idle","creationTimestamp":null,"labels":{"app":"idle"}},"spec":{"replicas":0,"selector":{"matchLabels":{"app":"idle"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"idle"}},"spec":{"containers":[{"name":"nginx","image":"nginx","resources":{}}]}},"strategy":{}},"status":{}}"#
        ),
        ProtobufKubectlCapture(
            name: "svc-nodeport",
            command: "kubectl create service nodeport web --tcp=80:8080 --node-port=30080",
            protobufHex: """
            6b3873000a0d0a027631120753657276696365126a0a1f0a0377656212001a0022002a003200380042005a0a0a036170
            70120377656212430a1d0a0738302d38303830120354435018502207080010903f1a002880eb01120a0a036170701203
            7765621a0022084e6f6465506f72743a00420052005a00600068001a020a001a002200
            """,
            json: #"{"kind":"Service","apiVersion":"v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"app":"web"}},"spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080,"nodePort":30080}],"selector":{"app":"web"},"type":"NodePort"},"status":{"loadBalancer":{}}}"#
        ),
        ProtobufKubectlCapture(
            name: "svc-clusterip-multi",
            command: "kubectl create service clusterip api --tcp=443:8443 --tcp=80",
            protobufHex: """
            6b3873000a0d0a0276311207536572766963651282010a1f0a0361706912001a0022002a003200380042005a0a0a0361
            70701203617069125b0a1d0a083434332d38343433120354435018bb032207080010fb411a0028000a150a0238301203
            54435018502206080010501a002800120a0a0361707012036170691a002209436c757374657249503a00420052005a00
            600068001a020a001a002200
            """,
            json: #"{"kind":"Service","apiVersion":"v1","metadata":{"name":"api","creationTimestamp":null,"labels":{"app":"api"}},"spec":{"ports":[{"name":"443-8443","protocol":"TCP","port":443,"targetPort":8443},{"name":"80","protocol":"TCP","port":80,"targetPort":80}],"selector":{"app":"api"},"type":"ClusterIP"},"status":{"loadBalancer":{}}}"#
        ),
        ProtobufKubectlCapture(
            name: "svc-headless",
            command: "kubectl create service clusterip headless --clusterip=None",
            protobufHex: """
            6b3873000a0d0a027631120753657276696365125f0a290a08686561646c65737312001a0022002a003200380042005a
            0f0a036170701208686561646c657373122e120f0a036170701208686561646c6573731a044e6f6e652209436c757374
            657249503a00420052005a00600068001a020a001a002200
            """,
            json: #"{"kind":"Service","apiVersion":"v1","metadata":{"name":"headless","creationTimestamp":null,"labels":{"app":"headless"}},"spec":{"selector":{"app":"headless"},"clusterIP":"None","type":"ClusterIP"},"status":{"loadBalancer":{}}}"#
        ),
        ProtobufKubectlCapture(
            name: "svc-lb",
            command: "kubectl create service loadbalancer lb --tcp=5678:8080",
            protobufHex: """
            6b3873000a0d0a027631120753657276696365126c0a1d0a026c6212001a0022002a003200380042005a090a03617070
            12026c6212470a1e0a09353637382d38303830120354435018ae2c2207080010903f1a00280012090a0361707012026c
            621a00220c4c6f616442616c616e6365723a00420052005a00600068001a020a001a002200
            """,
            json: #"{"kind":"Service","apiVersion":"v1","metadata":{"name":"lb","creationTimestamp":null,"labels":{"app":"lb"}},"spec":{"ports":[{"name":"5678-8080","protocol":"TCP","port":5678,"targetPort":8080}],"selector":{"app":"lb"},"type":"LoadBalancer"},"status":{"loadBalancer":{}}}"#
        ),
        ProtobufKubectlCapture(
            name: "svc-external",
            command: "kubectl create service externalname ext --external-name=example.com",
            protobufHex: """
            6b3873000a0d0a027631120753657276696365125a0a1f0a0365787412001a0022002a003200380042005a0a0a036170
            7012036578741233120a0a0361707012036578741a00220c45787465726e616c4e616d653a004200520b6578616d706c
            652e636f6d5a00600068001a020a001a002200
            """,
            json: #"{"kind":"Service","apiVersion":"v1","metadata":{"name":"ext","creationTimestamp":null,"labels":{"app":"ext"}},"spec":{"selector":{"app":"ext"},"type":"ExternalName","externalName":"example.com"},"status":{"loadBalancer":{}}}"#
        ),
        ProtobufKubectlCapture(
            name: "ns",
            command: "kubectl create namespace lab",
            protobufHex: """
            6b3873000a0f0a02763112094e616d657370616365121b0a130a036c616212001a0022002a0032003800420012001a02
            0a001a002200
            """,
            json: #"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"lab","creationTimestamp":null},"spec":{},"status":{}}"#
        ),
        ProtobufKubectlCapture(
            name: "cm",
            command: "kubectl create configmap cfg --from-literal=a=b --from-literal=empty= --from-file=note.txt --from-file=blob=blob.bin",
            protobufHex: """
            6b3873000a0f0a0276311209436f6e6669674d6170124d0a130a0363666712001a0022002a0032003800420012060a01
            6112016212090a05656d707479120012120a086e6f74652e747874120668656c6c6f0a1a0f0a04626c6f6212070001fe
            ff62696e1a002200
            """,
            json: #"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cfg","creationTimestamp":null},"data":{"a":"b","empty":"","note.txt":"hello\n"},"binaryData":{"blob":"AAH+/2Jpbg=="}}"#
        ),
        ProtobufKubectlCapture(
            name: "secret-generic",
            command: "kubectl create secret generic sec --from-literal=a=b --from-literal=pw=s3cr3t --type=Opaque",
            protobufHex: """
            6b3873000a0c0a027631120653656372657412330a130a0373656312001a0022002a0032003800420012060a01611201
            62120c0a02707712067333637233741a064f70617175651a002200
            """,
            json: #"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"sec","creationTimestamp":null},"data":{"a":"Yg==","pw":"czNjcjN0"},"type":"Opaque"}"#
        ),
        ProtobufKubectlCapture(
            name: "secret-tls",
            command: "kubectl create secret tls tls --cert=tls.crt --key=tls.key",
            protobufHex: """
            6b3873000a0c0a027631120653656372657412e5060a130a03746c7312001a0022002a0032003800420012ba040a0774
            6c732e63727412ae042d2d2d2d2d424547494e2043455254494649434154452d2d2d2d2d0a4d49494263444343415265
            67417749424167495559514135493945785677445a7443414672464d2f4e70703733743877436759494b6f5a497a6a30
            45417749770a446a454d4d416f474131554541777744624746694d423458445449324d54457a4d4441304d7a4d774e6c
            6f5844544d324d5445794e7a41304d7a4d774e6c6f770a446a454d4d416f474131554541777744624746694d466b7745
            7759484b6f5a497a6a3043415159494b6f5a497a6a304441516344516741454474536c374866440a4e55557a6c45624c
            4d386f6364645549663657686837676768515269496c755231486c4466485174346c495054474d6b61366e5239452b56
            77754276774e6b310a546b48746c676e424170543451614e544d464577485159445652304f4242594546476d34516d43
            4a68435a54694e626f385a4b6b4c2f6a4358384e774d4238470a41315564497751594d42614146476d34516d434a6843
            5a54694e626f385a4b6b4c2f6a4358384e774d41384741315564457745422f7751464d414d42416638770a436759494b
            6f5a497a6a3045417749445277417752414967476e666c2f72314232456378702f6b42662f50426f46786a3456464c31
            4c75594b416a6a506f535a0a596d5543494445576f31396431484a3550592f3147486d4c3878377275654869712b6a6e
            4a414433634e374d7a4643530a2d2d2d2d2d454e442043455254494649434154452d2d2d2d2d0a12fd010a07746c732e
            6b657912f1012d2d2d2d2d424547494e2050524956415445204b45592d2d2d2d2d0a4d494748416745414d424d474279
            7147534d34394167454743437147534d343941774548424730776177494241515167707a3132306548572b62446a5474
            466c0a4b5749304e3662466e2f4251774f32797a696a7277746f73354a696852414e434141514f314b587364384d3152
            544f555273737a796878313151682f706147480a75434346424749695735485565554e38644333695567394d59795272
            716448305435584334472f413254564f51653257436345436c5068420a2d2d2d2d2d454e442050524956415445204b45
            592d2d2d2d2d0a1a116b756265726e657465732e696f2f746c731a002200
            """,
            json: #"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"tls","creationTimestamp":null},"data":{"tls.crt":"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJjRENDQVJlZ0F3SUJBZ0lVWVFBNUk5RXhWd0RadENBRnJGTS9OcHA3M3Q4d0NnWUlLb1pJemowRUF3SXcKRGpFTU1Bb0dBMVVFQXd3RGJHRmlNQjRYRFRJMk1URXpNREEwTXpNd05sb1hEVE0yTVRFeU56QTBNek13TmxvdwpEakVNTUFvR0ExVUVBd3dEYkdGaU1Ga3dFd1lIS29aSXpqMENBUVlJS29aSXpqMERBUWNEUWdBRUR0U2w3SGZECk5VVXpsRWJMTThvY2RkVUlmNldoaDdnZ2hRUmlJbHVSMUhsRGZIUXQ0bElQVEdNa2E2blI5RStWd3VCdndOazEKVGtIdGxnbkJBcFQ0UWFOVE1GRXdIUVlEVlIwT0JCWUVGR200UW1DSmhDWlRpTmJvOFpLa0wvakNYOE53TUI4RwpBMVVkSXdRWU1CYUFGR200UW1DSmhDWlRpTmJvOFpLa0wvakNYOE53TUE4R0ExVWRFd0VCL3dRRk1BTUJBZjh3CkNnWUlLb1pJemowRUF3SURSd0F3UkFJZ0duZmwvcjFCMkVjeHAva0JmL1BCb0Z4ajRWRkwxTHVZS0FqalBvU1oKWW1VQ0lERVdvMTlkMUhKNVBZLzFHSG1MOHg3cnVlSGlxK2puSkFEM2NON016RkNTCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K","tls.key":"LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JR0hBZ0VBTUJNR0J5cUdTTTQ5QWdFR0NDcUdTTTQ5QXdFSEJHMHdhd0lCQVFRZ3B6MTIwZUhXK2JEalR0RmwKS1dJME42YkZuL0JRd08yeXppanJ3dG9zNUppaFJBTkNBQVFPMUtYc2Q4TTFSVE9VUnNzenloeDExUWgvcGFHSAp1Q0NGQkdJaVc1SFVlVU44ZEMzaVVnOU1ZeVJycWRIMFQ1WEM0Ry9BMlRWT1FlMldDY0VDbFBoQgotLS0tLUVORCBQUklWQVRFIEtFWS0tLS0tCg=="},"type":"kubernetes.io/tls"}"#
        ),
        ProtobufKubectlCapture(
            name: "secret-docker",
            command: "kubectl create secret docker-registry reg --docker-server=r.example --docker-username=u --docker-password=p --docker-email=e@x",
            protobufHex: """
            6b3873000a0c0a0276311206536563726574129f010a130a0372656712001a0022002a0032003800420012680a112e64
            6f636b6572636f6e6669676a736f6e12537b226175746873223a7b22722e6578616d706c65223a7b22757365726e616d
            65223a2275222c2270617373776f7264223a2270222c22656d61696c223a22654078222c2261757468223a2264547077
            227d7d7d1a1e6b756265726e657465732e696f2f646f636b6572636f6e6669676a736f6e1a002200
            """,
            json: #"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"reg","creationTimestamp":null},"data":{".dockerconfigjson":"eyJhdXRocyI6eyJyLmV4YW1wbGUiOnsidXNlcm5hbWUiOiJ1IiwicGFzc3dvcmQiOiJwIiwiZW1haWwiOiJlQHgiLCJhdXRoIjoiZFRwdyJ9fX0="},"type":"kubernetes.io/dockerconfigjson"}"#
        ),
        ProtobufKubectlCapture(
            name: "sa",
            command: "kubectl create serviceaccount robot",
            protobufHex: """
            6b3873000a140a027631120e536572766963654163636f756e7412170a150a05726f626f7412001a0022002a00320038
            0042001a002200
            """,
            json: #"{"kind":"ServiceAccount","apiVersion":"v1","metadata":{"name":"robot","creationTimestamp":null}}"#
        ),
        ProtobufKubectlCapture(
            name: "token",
            command: "kubectl create token robot --duration=1h --audience=a --audience=b --bound-object-kind=Pod --bound-object-name=p --bound-object-uid=1234",
            protobufHex: """
            6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e526571756573741237
            0a100a0012001a0022002a00320038004200121d0a01610a01621a120a03506f64120276311a01702204313233342090
            1c1a040a0012001a002200
            """,
            json: #"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"audiences":["a","b"],"expirationSeconds":3600,"boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"p","uid":"1234"}},"status":{"token":"","expirationTimestamp":null}}"#
        ),
        ProtobufKubectlCapture(
            name: "token-plain",
            command: "kubectl create token default",
            protobufHex: """
            6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e52657175657374121a
            0a100a0012001a0022002a0032003800420012001a040a0012001a002200
            """,
            json: #"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"audiences":null,"expirationSeconds":null,"boundObjectRef":null},"status":{"token":"","expirationTimestamp":null}}"#
        ),
    ]
}
