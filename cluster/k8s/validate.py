#!/usr/bin/env python3
"""Offline checks of the Kubernetes manifests (no API server, no kubeconform here).

Parses every document, checks the references between objects (selectors, service names,
probe ports, $(VAR) references, init members vs replicas) and the security wiring: every
rampart container serves or calls with mutual TLS (--ca/--cert/--key), nodes with an access
file, the init Job with a token from a Secret, each path inside a read-only Secret mount, the
readiness probe over TLS. Given a rampart binary it also makes the Secrets the way
secrets.sh does (in a temporary directory), checks that every file a pod or the Job names is
a key of the Secret mounted there, that each node's certificate names the address it is dialled
at, and that every container's arguments parse with the real CLI against those files.
    python3 cluster/k8s/validate.py [path/to/rampart]
"""
import base64
import glob
import os
import re
import ssl
import subprocess
import sys
import tempfile

import yaml

here = os.path.dirname(os.path.abspath(__file__))
docs = []
for path in sorted(glob.glob(os.path.join(here, "*.yaml"))):
    with open(path) as f:
        docs += [(os.path.basename(path), d) for d in yaml.safe_load_all(f) if d]
errors = []


def fail(msg):
    errors.append(msg)


by_kind = {}
for name, d in docs:
    for key in ("apiVersion", "kind", "metadata"):
        if key not in d:
            fail(f"{name}: a document has no {key}")
    by_kind.setdefault(d["kind"], []).append(d)

sts = by_kind["StatefulSet"][0]
spec = sts["spec"]
labels = spec["template"]["metadata"]["labels"]
if spec["selector"]["matchLabels"] != labels:
    fail("StatefulSet selector does not match its pod labels")
services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
headless = services.get(spec["serviceName"])
if not headless or headless["spec"].get("clusterIP") != "None":
    fail("serviceName must name a headless Service")
elif not headless["spec"].get("publishNotReadyAddresses"):
    fail("the headless Service must publish not-ready addresses (peers meet before ready)")
for s in services.values():
    if s["spec"]["selector"] != labels:
        fail(f"Service {s['metadata']['name']} selects other pods")
pdb = by_kind["PodDisruptionBudget"][0]
if pdb["spec"]["selector"]["matchLabels"] != labels:
    fail("PodDisruptionBudget selects other pods")
replicas = spec["replicas"]
if pdb["spec"].get("maxUnavailable", 0) > (replicas - 1) // 2:
    fail("PodDisruptionBudget allows losing the quorum")
if spec.get("ordinals", {}).get("start", 0) < 1:
    fail("Raft ids must be positive: ordinals.start >= 1")
if not spec.get("volumeClaimTemplates"):
    fail("no PersistentVolumeClaim per node")

containers = []
for kind in ("StatefulSet", "Job"):
    for obj in by_kind.get(kind, []):
        for c in obj["spec"]["template"]["spec"]["containers"]:
            containers.append((obj["metadata"]["name"], c))
for owner, c in containers:
    env = {e["name"] for e in c.get("env", [])}
    for arg in c.get("args", []):
        for var in re.findall(r"\$\((\w+)\)", arg):
            if var not in env:
                fail(f"{owner}: {arg} refers to undefined {var}")
    ports = {p["name"] for p in c.get("ports", [])}
    for probe in ("readinessProbe", "livenessProbe"):
        p = c.get(probe, {})
        for kind in ("tcpSocket", "httpGet"):
            port = p.get(kind, {}).get("port")
            if isinstance(port, str) and port not in ports:
                fail(f"{owner}: {probe} names unknown port {port}")
main = [c for o, c in containers if o == sts["metadata"]["name"]][0]
readiness = main.get("readinessProbe", {})
probe_cmd = readiness.get("exec", {}).get("command", [])
# The kubelet's gRPC probe speaks no TLS, and the node requires it: the binary's own client.
if "grpc" in readiness or probe_cmd[-1:] != ["health"]:
    fail("readiness must run `rampart health` (exec): the kubelet's gRPC probe has no TLS")
for a in probe_cmd:
    if re.search(r"\$\(\w+\)", a):
        fail(f"readiness probe: {a}: $(VAR) is not expanded in probes")
job_members = [a for o, c in containers if o != sts["metadata"]["name"] for a in c["args"] if a.startswith("--member=")]
if len(job_members) != replicas:
    fail(f"init Job names {len(job_members)} members for {replicas} replicas")


# --- Security wiring -------------------------------------------------------------------------
def flag(args, name):
    """The value of --name=VALUE or --name VALUE in args, or None."""
    for i, a in enumerate(args):
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
        if a == f"--{name}" and i + 1 < len(args):
            return args[i + 1]
    return None


def pod_spec(owner):
    for kind in ("StatefulSet", "Job"):
        for obj in by_kind.get(kind, []):
            if obj["metadata"]["name"] == owner:
                return obj["spec"]["template"]["spec"]
    return {}


def secret_mounts(owner, c):
    """mountPath -> Secret name, for the container's Secret volumes (checked read-only)."""
    volumes = {v["name"]: v for v in pod_spec(owner).get("volumes", [])}
    out = {}
    for m in c.get("volumeMounts", []):
        v = volumes.get(m["name"])
        if v is None:
            if not any(t["metadata"]["name"] == m["name"] for t in spec.get("volumeClaimTemplates", [])):
                fail(f"{owner}: mount {m['mountPath']} names no volume {m['name']}")
            continue
        if "secret" not in v:
            continue
        if not m.get("readOnly"):
            fail(f"{owner}: Secret mount {m['mountPath']} must be readOnly")
        mode = v["secret"].get("defaultMode", 0o644)
        if mode & 0o007:
            fail(f"{owner}: Secret {v['secret']['secretName']} is world-readable (defaultMode {mode:o})")
        out[m["mountPath"].rstrip("/")] = v["secret"]["secretName"]
    return out


def in_secret(owner, mounts, path):
    """(Secret, key) a path names, or None after reporting why not."""
    head, key = os.path.split(path)
    if head not in mounts:
        fail(f"{owner}: {path} is not inside a Secret mount ({', '.join(sorted(mounts)) or 'none'})")
        return None
    return mounts[head], key


# (owner, Secret, key) every file a container names must be; filled with each pod's sample.
wanted = []
tls_flags = ("ca", "cert", "key")
for owner, c in containers:
    args = c.get("args", [])
    mounts = secret_mounts(owner, c)
    is_node = owner == sts["metadata"]["name"]
    names = tls_flags + (("access",) if is_node else ())
    for name in names:
        if flag(args, name) is None:
            fail(f"{owner}: no --{name}: {'nodes serve' if is_node else 'clients call'} with mutual TLS{' and an access file' if name == 'access' else ''}")
    if any(a.startswith("--token") for a in args):
        fail(f"{owner}: a token in the arguments is visible to anyone who reads the object; use RAMPART_TOKEN from a Secret")
    if is_node:
        paths = [(flag(args, n), n) for n in names if flag(args, n)]
        for n in tls_flags:
            if flag(probe_cmd, n) is None:
                fail(f"readiness probe: no --{n} (the node requires a client certificate)")
            else:
                paths.append((flag(probe_cmd, n), "probe " + n))
        if not (flag(probe_cmd, "endpoint") or "").startswith("https://"):
            fail("readiness probe: --endpoint must be https://")
    else:
        paths = [(flag(args, n), n) for n in names if flag(args, n)]
        if not (flag(args, "endpoint") or "").startswith("https://"):
            fail(f"{owner}: --endpoint must be https://")
        token = [e for e in c.get("env", []) if e["name"] == "RAMPART_TOKEN"]
        ref = token[0].get("valueFrom", {}).get("secretKeyRef") if token else None
        if not ref:
            fail(f"{owner}: RAMPART_TOKEN must come from a Secret (secretKeyRef)")
        else:
            wanted.append((owner, ref["name"], ref["key"], None))
    for path, what in paths:
        found = in_secret(owner, mounts, path)
        if found:
            wanted.append((owner, found[0], found[1], what))

binary = sys.argv[1] if len(sys.argv) > 1 else None
namespace = "default"
pods = [f"rampart-{spec.get('ordinals', {}).get('start', 0) + i}" for i in range(replicas)]


def expand(text, pod):
    values = {"POD_INDEX": pod.split("-")[-1], "POD_NAME": pod, "POD_NAMESPACE": namespace}
    return re.sub(r"\$\((\w+)\)", lambda m: values.get(m.group(1), "x"), text)


def sans(pem):
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as f:
        f.write(pem)
        f.flush()
        return {v for _, v in ssl._ssl._test_decode_cert(f.name).get("subjectAltName", ())}


if binary:
    # The Secrets as secrets.sh makes them at install time.
    made = subprocess.run(
        [os.path.join(here, "secrets.sh"), "--print", "--namespace", namespace, "--nodes", str(replicas)],
        capture_output=True, text=True, env={**os.environ, "RAMPART_BIN": os.path.abspath(binary)},
    )
    if made.returncode != 0:
        fail(f"secrets.sh: {made.stderr.strip()}")
        secrets = {}
    else:
        secrets = {
            d["metadata"]["name"]: {k: base64.b64decode(v) for k, v in d["data"].items()}
            for d in yaml.safe_load_all(made.stdout) if d and d.get("kind") == "Secret"
        }
    for owner, name, key, what in wanted:
        for pod in pods if owner == sts["metadata"]["name"] else pods[:1]:
            k = expand(key, pod)
            if name not in secrets:
                fail(f"{owner}: Secret {name} is not one secrets.sh makes ({', '.join(sorted(secrets))})")
            elif k not in secrets[name]:
                who = f"{owner} ({pod})" if owner == sts["metadata"]["name"] else owner
                fail(f"{who}: {what or 'RAMPART_TOKEN'}: Secret {name} has no key {k}")
    # Each node's certificate names the address peers dial, the client Service and the probe's.
    tls = secrets.get("rampart-tls", {})
    node_args = main["args"]
    for pod in pods:
        cert = tls.get(expand(os.path.basename(flag(node_args, "cert") or ""), pod))
        if not cert:
            continue
        names = sans(cert)
        host = expand(flag(node_args, "advertise") or "", pod).rsplit(":", 1)[0]
        for need in (host, f"rampart.{namespace}.svc.cluster.local", "127.0.0.1"):
            if need not in names:
                fail(f"{pod}: its certificate does not name {need} ({sorted(names)})")
    for owner, c in containers:
        if owner == sts["metadata"]["name"]:
            continue
        host = expand(flag(c["args"], "endpoint") or "", pods[0]).split("://", 1)[-1].rsplit(":", 1)[0]
        first = tls.get(f"{pods[0]}.pem")
        if first and host not in sans(first):
            fail(f"{owner}: --endpoint host {host} is not named by {pods[0]}'s certificate")
    # Every container's arguments (and the probe's) parse with the real CLI, the files in place.
    with tempfile.TemporaryDirectory() as root:
        for owner, c in containers:
            mounts = secret_mounts(owner, c)
            for path, name in mounts.items():
                os.makedirs(root + path, exist_ok=True)
                for k, v in secrets.get(name, {}).items():
                    with open(os.path.join(root + path, k), "wb") as f:
                        f.write(v)
            def local(a):
                for path in mounts:
                    a = a.replace(path + "/", root + path + "/")
                return expand(a, pods[0])
            runs = [c["args"]]
            if owner == sts["metadata"]["name"]:
                runs.append(probe_cmd[1:])
            for args in runs:
                # Parse only: --help after the arguments makes clap validate them and stop.
                probe = subprocess.run([binary, *map(local, args), "--help"], capture_output=True, text=True)
                if probe.returncode != 0:
                    fail(f"{owner}: arguments rejected by rampart: {probe.stderr.strip()}")

errors = list(dict.fromkeys(errors))
for e in errors:
    print("error:", e)
print(f"{len(docs)} documents, {len(errors)} errors")
sys.exit(1 if errors else 0)
