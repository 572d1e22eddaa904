#!/usr/bin/env python3
"""Offline checks of the Kubernetes manifests (no API server, no kubeconform here).

Parses every document, checks the references between objects (selectors, service names,
probe ports, $(VAR) references, init members vs replicas) and, given a rampart binary,
that every container's arguments parse with the real CLI.
    python3 cluster/k8s/validate.py [path/to/rampart]
"""
import glob
import os
import re
import subprocess
import sys

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
if "grpc" not in main.get("readinessProbe", {}):
    fail("readiness must come from gRPC health")
job_members = [a for o, c in containers if o != sts["metadata"]["name"] for a in c["args"] if a.startswith("--member=")]
if len(job_members) != replicas:
    fail(f"init Job names {len(job_members)} members for {replicas} replicas")

binary = sys.argv[1] if len(sys.argv) > 1 else None
if binary:
    sample = {"POD_INDEX": "1", "POD_NAME": "rampart-1", "POD_NAMESPACE": "default"}
    for owner, c in containers:
        args = [re.sub(r"\$\((\w+)\)", lambda m: sample.get(m.group(1), "x"), a) for a in c["args"]]
        # Parse only: --help after the arguments makes clap validate them and stop.
        probe = subprocess.run([binary, *args, "--help"], capture_output=True, text=True)
        if probe.returncode != 0:
            fail(f"{owner}: arguments rejected by rampart: {probe.stderr.strip()}")

for e in errors:
    print("error:", e)
print(f"{len(docs)} documents, {len(errors)} errors")
sys.exit(1 if errors else 0)
