#!/usr/bin/env python3
"""Independent clients of epr's OCI API: the `oras` package pushes (chunked) and pulls an
artifact and lists referrers; `cryptography` verifies the repository's cosign-style signature
against its published public key.

    scripts/oci-clients.py HOST:PORT ADMIN_TOKEN PACKAGE OBJECT_FILE OUT_DIR

PACKAGE is a published package whose OCI artifacts exist; OBJECT_FILE a BPF object pushed as
an Inspektor Gadget-style program (the push becomes a submission of `oras-gadget`). Prints one
line per check; exits 1 when any fails.
"""
import base64
import hashlib
import json
import os
import sys

import oras.client
import oras.oci
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

HOST, TOKEN, PACKAGE, OBJECT, OUT = sys.argv[1:6]
BASE = f"http://{HOST}"
failures = []


def check(name, condition, detail=""):
    print(("ok   " if condition else "FAIL ") + name + ("" if condition else f" {detail}"))
    if not condition:
        failures.append(name)


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def get(path, **kwargs):
    return requests.get(BASE + path, timeout=30, **kwargs)


# --- the cosign-style signature, checked with the published key ------------------------------
public_key = serialization.load_pem_public_key(get("/api/v1/oci/public-key").content)
check("the public key is ECDSA P-256", isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp256r1")
image = get(f"/v2/{PACKAGE}/manifests/latest")
image_digest = image.headers["Docker-Content-Digest"]
check("the image's digest is its bytes' digest", image_digest == digest(image.content))


def verify(signature_manifest, subject):
    layer = signature_manifest["layers"][0]
    payload = get(f"/v2/{PACKAGE}/blobs/{layer['digest']}").content
    if digest(payload) != layer["digest"]:
        return False, "payload digest"
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    try:
        public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False, "signature"
    claims = json.loads(payload)
    if claims["critical"]["image"]["docker-manifest-digest"] != subject:
        return False, "names another manifest"
    if claims["critical"]["type"] != "cosign container image signature":
        return False, "type"
    try:
        public_key.verify(signature, payload.replace(b"sha256:", b"sha256:0", 1), ec.ECDSA(hashes.SHA256()))
        return False, "a changed payload verified too"
    except InvalidSignature:
        pass
    return True, ""


legacy_tag = image_digest.replace(":", "-") + ".sig"
legacy = get(f"/v2/{PACKAGE}/manifests/{legacy_tag}")
check("the legacy .sig tag holds a simple signing layer", legacy.status_code == 200
      and legacy.json()["layers"][0]["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json", legacy.status_code)
ok, why = verify(legacy.json(), image_digest)
check("the legacy signature verifies against the public key and names the image", ok, why)
referrers = get(f"/v2/{PACKAGE}/referrers/{image_digest}", params={"artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json"}).json()
check("the signature is also an OCI 1.1 referrer", len(referrers["manifests"]) == 1, referrers)
if referrers["manifests"]:
    ok, why = verify(get(f"/v2/{PACKAGE}/manifests/{referrers['manifests'][0]['digest']}").json(), image_digest)
    check("the referrer signature verifies", ok, why)
package_artifacts = get(f"/v2/{PACKAGE}/referrers/{image_digest}", params={"artifactType": "application/vnd.epr.package.v1"}).json()["manifests"]
check("the package artifact refers to the image", len(package_artifacts) == 1, package_artifacts)
if package_artifacts:
    package_digest = package_artifacts[0]["digest"]
    signatures = get(f"/v2/{PACKAGE}/referrers/{package_digest}", params={"artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json"}).json()["manifests"]
    ok, why = verify(get(f"/v2/{PACKAGE}/manifests/{signatures[0]['digest']}").json(), package_digest) if signatures else (False, "none")
    check("the package artifact is signed too", ok, why)

# --- oras: push (chunked), pull, referrers ----------------------------------------------------
client = oras.client.OrasClient(hostname=HOST, insecure=True)
client.login(username="admin", password=TOKEN, hostname=HOST)
os.chdir(OUT)
with open(OBJECT, "rb") as source, open("program.o", "wb") as copy:
    object_bytes = source.read()
    copy.write(object_bytes)
response = client.push(target=f"{HOST}/oras-gadget:0.1.0", files=["program.o:application/vnd.gadget.ebpf.program.v1+binary"],
                       manifest_annotations={"org.opencontainers.image.licenses": "GPL-2.0-only",
                                             "org.opencontainers.image.description": "pushed by oras"},
                       disable_path_validation=True, do_chunked=True, chunk_size=4096)
check("oras pushes a Gadget-style program in chunks: 201", response.status_code == 201, response.status_code)
submission = response.headers.get("Epr-Submission", "")
check("the push became a submission", submission.startswith("sub_"), dict(response.headers))
pushed_digest = response.headers.get("Docker-Content-Digest", "")
print(f"submission {submission}")
pulled = client.pull(target=f"{HOST}/oras-gadget@{pushed_digest}", outdir=os.path.join(OUT, "pulled"))
pulled_bytes = open(pulled[0], "rb").read() if pulled else b""
check("oras pulls the pushed artifact back by digest, byte for byte", pulled_bytes == object_bytes, pulled)

notes = os.path.join(OUT, "notes.txt")
with open(notes, "w") as handle:
    handle.write("reviewed by the security team\n")
subject = oras.oci.Subject(mediaType=image.json()["mediaType"], digest=image_digest, size=len(image.content))
response = client.push(target=f"{HOST}/{PACKAGE}:notes-1", files=[f"{notes}:text/plain"], subject=subject,
                       disable_path_validation=True)
check("oras attaches an artifact to the image: 201 with OCI-Subject", response.status_code == 201
      and response.headers.get("OCI-Subject") == image_digest, (response.status_code, dict(response.headers)))
listed = client.do_request(f"{BASE}/v2/{PACKAGE}/referrers/{image_digest}", "GET").json()
check("the referrers list holds it", response.headers.get("Docker-Content-Digest") in [m["digest"] for m in listed["manifests"]], listed)

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
