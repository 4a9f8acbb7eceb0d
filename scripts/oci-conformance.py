#!/usr/bin/env python3
"""Exercises every endpoint of the OCI Distribution Specification's table (end-1 to end-14),
with the token flow and the specification's error codes, against a running epr server.

    scripts/oci-conformance.py BASE_URL ADMIN_TOKEN PACKAGE

PACKAGE must be a published package whose OCI artifacts exist, and the server must run with
oci_delete = true. The script creates the user `conformance-other` (a publisher who owns
nothing) for the DENIED case. It prints one line per check and exits 1 when any fails.
Standard library only: an independent client.
"""
import base64
import gzip
import hashlib
import io
import json
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request

BASE, ADMIN, PACKAGE = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
REPO = "conformance-scratch"
failures = []
passed = 0


def check(name, condition, detail=""):
    global passed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failures.append(name)
        print(f"FAIL {name} {detail}")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)


def request(method, path, body=None, headers=None, token=None):
    url = path if path.startswith("http") else BASE + path
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with opener.open(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def codes(body):
    try:
        return [e["code"] for e in json.loads(body)["errors"]]
    except Exception:
        return []


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def bearer(scope, user=None, secret=None):
    """The token flow: GET the realm with Basic credentials (or none)."""
    status, headers, _ = request("GET", "/v2/")
    challenge = headers.get("WWW-Authenticate", "")
    realm = challenge.split('realm="')[1].split('"')[0]
    service = challenge.split('service="')[1].split('"')[0]
    query = urllib.parse.urlencode({"service": service, "scope": scope})
    extra = {}
    if user:
        extra["Authorization"] = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
    status, _, body = request("GET", f"{realm}?{query}", headers=extra)
    assert status == 200, (status, body)
    return json.loads(body)["token"]


# --- end-1 and the token flow -------------------------------------------------------------
status, headers, body = request("GET", "/v2/")
check("end-1 without credentials: 401 with a Bearer challenge", status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer realm="),
      f"{status} {headers.get('WWW-Authenticate')}")
check("UNAUTHORIZED code on 401", "UNAUTHORIZED" in codes(body), body)
pull = bearer(f"repository:{PACKAGE}:pull")
status, _, _ = request("GET", "/v2/", token=pull)
check("end-1 with an anonymous pull token: 200", status == 200, status)
push = bearer(f"repository:{REPO}:pull,push,delete repository:{PACKAGE}:pull", "admin", ADMIN)
status, _, _ = request("GET", "/v2/", token=push)
check("end-1 with a token from Basic credentials: 200", status == 200, status)
status, _, body = request("GET", "/v2/token?scope=repository:x:pull", headers={"Authorization": "Basic " + base64.b64encode(b"admin:epr_wrong").decode()})
check("token endpoint refuses wrong credentials", status == 401, status)

# --- end-2, end-3: pulling the published package --------------------------------------------
status, headers, manifest_bytes = request("GET", f"/v2/{PACKAGE}/manifests/latest",
                                          headers={"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"})
check("end-3 GET manifest by tag", status == 200, status)
image_digest = headers.get("Docker-Content-Digest")
check("Docker-Content-Digest is the manifest's digest", image_digest == digest(manifest_bytes), image_digest)
status, headers, _ = request("HEAD", f"/v2/{PACKAGE}/manifests/{image_digest}")
check("end-3 HEAD manifest by digest", status == 200 and int(headers.get("Content-Length", -1)) == len(manifest_bytes), status)
manifest = json.loads(manifest_bytes)
if manifest.get("mediaType") == "application/vnd.oci.image.index.v1+json":
    child = manifest["manifests"][0]["digest"]
    _, _, manifest_bytes = request("GET", f"/v2/{PACKAGE}/manifests/{child}")
    manifest = json.loads(manifest_bytes)
layer = manifest["layers"][0]
status, headers, layer_bytes = request("GET", f"/v2/{PACKAGE}/blobs/{layer['digest']}")
check("end-2 GET blob", status == 200 and digest(layer_bytes) == layer["digest"], status)
status, headers, _ = request("HEAD", f"/v2/{PACKAGE}/blobs/{layer['digest']}")
check("end-2 HEAD blob", status == 200 and int(headers["Content-Length"]) == layer["size"], status)
status, headers, part = request("GET", f"/v2/{PACKAGE}/blobs/{layer['digest']}", headers={"Range": "bytes=0-9"})
check("blob range request", status == 206 and part == layer_bytes[:10], status)
status, _, body = request("GET", f"/v2/{PACKAGE}/blobs/sha256:" + "0" * 64)
check("BLOB_UNKNOWN for an unknown blob", status == 404 and "BLOB_UNKNOWN" in codes(body), (status, body))
status, _, body = request("GET", f"/v2/{PACKAGE}/manifests/9.9.9-missing")
check("MANIFEST_UNKNOWN for an unknown tag", status == 404 and "MANIFEST_UNKNOWN" in codes(body), (status, body))
status, _, body = request("GET", "/v2/Not_Valid/manifests/latest")
check("NAME_INVALID for an invalid name", status == 400 and "NAME_INVALID" in codes(body), (status, body))
status, _, body = request("GET", "/v2/no-such-package-here/tags/list")
check("NAME_UNKNOWN for an unknown repository", status == 404 and "NAME_UNKNOWN" in codes(body), (status, body))

# --- end-8: tags with pagination ------------------------------------------------------------
status, _, body = request("GET", f"/v2/{PACKAGE}/tags/list")
tags = json.loads(body)["tags"]
check("end-8a tag list", status == 200 and "latest" in tags and tags == sorted(tags), tags)
status, headers, body = request("GET", f"/v2/{PACKAGE}/tags/list?n=1")
first = json.loads(body)["tags"]
check("end-8b n=1 gives one tag and a next link", status == 200 and first == tags[:1] and 'rel="next"' in headers.get("Link", ""), (first, headers.get("Link")))
status, _, body = request("GET", f"/v2/{PACKAGE}/tags/list?n=100&last={first[0]}")
check("end-8b last= continues after the tag", json.loads(body)["tags"] == tags[1:], body)

# --- end-12: referrers ----------------------------------------------------------------------
status, headers, body = request("GET", f"/v2/{PACKAGE}/referrers/{image_digest}")
index = json.loads(body)
types = {m.get("artifactType") for m in index.get("manifests", [])}
check("end-12a referrers of the image", status == 200 and headers.get("Content-Type", "").startswith("application/vnd.oci.image.index.v1+json")
      and "application/vnd.epr.package.v1" in types, (status, types))
status, headers, body = request("GET", f"/v2/{PACKAGE}/referrers/{image_digest}?artifactType=application/vnd.epr.package.v1")
filtered = json.loads(body)["manifests"]
check("end-12b referrers filtered by artifactType", status == 200 and headers.get("OCI-Filters-Applied") == "artifactType"
      and len(filtered) == 1 and filtered[0]["artifactType"] == "application/vnd.epr.package.v1", filtered)
status, _, body = request("GET", f"/v2/{PACKAGE}/referrers/sha256:" + "1" * 64)
check("referrers of an unknown digest: an empty index, not 404", status == 200 and json.loads(body)["manifests"] == [], status)

# --- pushing needs authentication; a publisher who does not own the package is denied -------
status, headers, body = request("POST", f"/v2/{REPO}/blobs/uploads/")
check("push without credentials: 401 with the push scope", status == 401 and "push" in headers.get("WWW-Authenticate", ""), headers.get("WWW-Authenticate"))
request("POST", "/api/v1/users", json.dumps({"name": "conformance-other", "role": "publisher"}).encode(), {"Content-Type": "application/json"}, ADMIN)
status, _, body = request("POST", "/api/v1/tokens", json.dumps({"name": "oci", "scopes": ["publish-new", "publish-update"], "user": "conformance-other"}).encode(),
                          {"Content-Type": "application/json"}, ADMIN)
other = json.loads(body)["token"]
other_bearer = bearer(f"repository:{PACKAGE}:pull,push", "conformance-other", other)
status, _, body = request("POST", f"/v2/{PACKAGE}/blobs/uploads/", token=other_bearer)
check("DENIED: a publisher pushing to a package it does not own", status == 403 and "DENIED" in codes(body), (status, body))
status, headers, body = request("POST", f"/v2/{REPO}/blobs/uploads/", token=pull)
check("a pull-only token asked to push: 403 insufficient_scope naming the push scope", status == 403 and "DENIED" in codes(body)
      and "push" in headers.get("WWW-Authenticate", "") and 'error="insufficient_scope"' in headers.get("WWW-Authenticate", ""), (status, headers))

# --- end-4a, end-5, end-6, end-13, end-14: chunked upload ------------------------------------
config = b'{"created":"2026-01-01T00:00:00Z"}'
content = bytes(range(256)) * 300
status, headers, _ = request("POST", f"/v2/{REPO}/blobs/uploads/", token=push)
location = headers.get("Location", "")
check("end-4a POST opens an upload: 202 + Location", status == 202 and "/blobs/uploads/" in location, (status, location))
status, headers, _ = request("PATCH", location, content[:40000], {"Content-Type": "application/octet-stream", "Content-Range": "0-39999"}, push)
check("end-5 PATCH first chunk: 202, Range 0-39999", status == 202 and headers.get("Range") == "0-39999", (status, headers.get("Range")))
location = headers.get("Location", location)
status, headers, _ = request("GET", location, token=push)
check("end-13 upload status: 204 with Range", status == 204 and headers.get("Range") == "0-39999", (status, headers.get("Range")))
status, headers, body = request("PATCH", location, content[50000:], {"Content-Type": "application/octet-stream", "Content-Range": "50000-76799"}, push)
check("end-5 out-of-order chunk: 416 with the upload's Range", status == 416 and headers.get("Range") == "0-39999"
      and "BLOB_UPLOAD_INVALID" in codes(body), (status, headers.get("Range")))
status, headers, _ = request("GET", location, token=push)
check("the upload survives a 416: status 204, Range 0-39999", status == 204 and headers.get("Range") == "0-39999", (status, headers.get("Range")))
status, headers, _ = request("PATCH", location, content[40000:], {"Content-Type": "application/octet-stream", "Content-Range": f"40000-{len(content) - 1}"}, push)
check("end-5 the next chunk, in order, on the same upload", status == 202 and headers.get("Range") == f"0-{len(content) - 1}", headers.get("Range"))
separator = "&" if "?" in location else "?"
status, _, body = request("PUT", f"{location}{separator}digest=sha256:{'2' * 64}", b"", {"Content-Type": "application/octet-stream"}, push)
check("DIGEST_INVALID when the digest does not match", status == 400 and "DIGEST_INVALID" in codes(body), (status, body))
status, headers, _ = request("POST", f"/v2/{REPO}/blobs/uploads/", token=push)
location = headers["Location"]
request("PATCH", location, content[:1000], {"Content-Type": "application/octet-stream", "Content-Range": "0-999"}, push)
status, headers, _ = request("PUT", f"{location}?digest={digest(content)}", content[1000:], {"Content-Type": "application/octet-stream"}, push)
check("end-6 PUT closes the upload with the last chunk: 201", status == 201 and headers.get("Docker-Content-Digest") == digest(content), status)
status, _, fetched = request("GET", f"/v2/{REPO}/blobs/{digest(content)}", token=push)
check("the chunked blob reads back whole", status == 200 and fetched == content, status)
status, headers, _ = request("POST", f"/v2/{REPO}/blobs/uploads/", token=push)
location = headers["Location"]
status, _, _ = request("DELETE", location, token=push)
check("end-14 DELETE cancels an upload: 204", status == 204, status)
status, _, body = request("GET", location, token=push)
check("BLOB_UPLOAD_UNKNOWN after cancelling", status == 404 and "BLOB_UPLOAD_UNKNOWN" in codes(body), (status, body))

# --- end-4b monolithic, end-11 mount ----------------------------------------------------------
status, headers, _ = request("POST", f"/v2/{REPO}/blobs/uploads/?digest={digest(config)}", config,
                             {"Content-Type": "application/octet-stream", "Content-Length": str(len(config))}, push)
check("end-4b monolithic POST: 201", status == 201 and headers.get("Location", "").endswith(digest(config)), status)
status, headers, _ = request("POST", f"/v2/{REPO}/blobs/uploads/?mount={layer['digest']}&from={PACKAGE}", token=push)
check("end-11 cross-repository mount: 201", status == 201 and headers.get("Docker-Content-Digest") == layer["digest"], status)
status, _, _ = request("HEAD", f"/v2/{REPO}/blobs/{layer['digest']}", token=push)
check("the mounted blob is in the repository", status == 200, status)
status, headers, _ = request("POST", f"/v2/{REPO}/blobs/uploads/?mount=sha256:{'3' * 64}&from={PACKAGE}", token=push)
check("a mount of an unknown blob falls back to an upload: 202", status == 202 and "/blobs/uploads/" in headers.get("Location", ""), status)
request("DELETE", headers["Location"], token=push)

# --- end-7 manifests ----------------------------------------------------------------------
artifact = {
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": "application/vnd.example.notes",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
    "layers": [{"mediaType": "application/octet-stream", "digest": digest(content), "size": len(content)}],
}
artifact_bytes = json.dumps(artifact).encode()
status, headers, _ = request("PUT", f"/v2/{REPO}/manifests/notes", artifact_bytes, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, push)
check("end-7 PUT manifest by tag: 201", status == 201 and headers.get("Docker-Content-Digest") == digest(artifact_bytes), (status, headers))
status, _, fetched = request("GET", f"/v2/{REPO}/manifests/notes", token=push)
check("the manifest is stored byte for byte", status == 200 and fetched == artifact_bytes, status)
status, _, _ = request("GET", f"/v2/{REPO}/manifests/notes")
check("a private push is not there for anonymous pulls", status == 404, status)
missing = dict(artifact, layers=[{"mediaType": "application/octet-stream", "digest": "sha256:" + "4" * 64, "size": 1}])
status, _, body = request("PUT", f"/v2/{REPO}/manifests/missing", json.dumps(missing).encode(), {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, push)
check("MANIFEST_BLOB_UNKNOWN", status == 400 and "MANIFEST_BLOB_UNKNOWN" in codes(body), (status, body))
status, _, body = request("PUT", f"/v2/{REPO}/manifests/broken", b"{not json", {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, push)
check("MANIFEST_INVALID", status == 400 and "MANIFEST_INVALID" in codes(body), (status, body))
status, _, body = request("PUT", f"/v2/{REPO}/manifests/{digest(b'other')}", artifact_bytes, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, push)
check("DIGEST_INVALID when a manifest's digest reference does not match", status == 400 and "DIGEST_INVALID" in codes(body), (status, body))
huge = b'{"schemaVersion":2,"annotations":{"x":"' + b"a" * (4 << 20) + b'"}}'
status, _, body = request("PUT", f"/v2/{REPO}/manifests/huge", huge, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, push)
check("SIZE_INVALID: a manifest over 4 MiB is refused with 413", status == 413 and "SIZE_INVALID" in codes(body), (status, body[:200]))

# --- referrers of a pushed artifact with a subject ----------------------------------------------
package_push = bearer(f"repository:{PACKAGE}:pull,push", "admin", ADMIN)
sbom = b'{"spdxVersion":"SPDX-2.3"}'
request("POST", f"/v2/{PACKAGE}/blobs/uploads/?digest={digest(sbom)}", sbom, {"Content-Type": "application/octet-stream"}, package_push)
request("POST", f"/v2/{PACKAGE}/blobs/uploads/?digest={digest(b'{}')}", b"{}", {"Content-Type": "application/octet-stream"}, package_push)
image_descriptor = {"mediaType": json.loads(request("GET", f"/v2/{PACKAGE}/manifests/{image_digest}")[2])["mediaType"],
                    "digest": image_digest, "size": len(request("GET", f"/v2/{PACKAGE}/manifests/{image_digest}")[2])}
referrer = {
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": "application/spdx+json",
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"{}"), "size": 2},
    "layers": [{"mediaType": "application/spdx+json", "digest": digest(sbom), "size": len(sbom)}],
    "subject": image_descriptor,
}
referrer_bytes = json.dumps(referrer).encode()
status, headers, _ = request("PUT", f"/v2/{PACKAGE}/manifests/{digest(referrer_bytes)}", referrer_bytes,
                             {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, package_push)
check("a manifest with a subject: 201 with OCI-Subject", status == 201 and headers.get("OCI-Subject") == image_digest, (status, headers))
status, _, body = request("GET", f"/v2/{PACKAGE}/referrers/{image_digest}?artifactType=application/spdx+json")
found = [m["digest"] for m in json.loads(body)["manifests"]]
check("the owner's referrer of a public image is public and listed", found == [digest(referrer_bytes)], found)

plain = dict(referrer)
del plain["subject"]
plain_bytes = json.dumps(plain).encode()
version = json.loads(request("GET", f"/v2/{PACKAGE}/manifests/{image_digest}")[2]).get("annotations", {}).get("org.opencontainers.image.version", "")
for tag in [version.replace("+", "_"), "latest"]:
    status, _, body = request("PUT", f"/v2/{PACKAGE}/manifests/{tag}", plain_bytes, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, package_push)
    check(f"DENIED: the tag {tag} of the published package never moves", status == 403 and "DENIED" in codes(body), (status, body))
status, headers, _ = request("GET", f"/v2/{PACKAGE}/manifests/latest")
check("latest still names the published image", headers.get("Docker-Content-Digest") == image_digest, headers.get("Docker-Content-Digest"))

# --- end-9, end-10 deletes ----------------------------------------------------------------------
status, _, _ = request("DELETE", f"/v2/{REPO}/manifests/{digest(artifact_bytes)}", token=push)
check("end-9 DELETE manifest: 202", status == 202, status)
status, _, body = request("GET", f"/v2/{REPO}/manifests/{digest(artifact_bytes)}", token=push)
check("a deleted manifest is gone", status == 404 and "MANIFEST_UNKNOWN" in codes(body), status)
status, _, _ = request("DELETE", f"/v2/{REPO}/blobs/{digest(content)}", token=push)
check("end-10 DELETE blob: 202", status == 202, status)
status, _, body = request("GET", f"/v2/{REPO}/blobs/{digest(content)}", token=push)
check("a deleted blob is gone", status == 404 and "BLOB_UNKNOWN" in codes(body), status)
status, _, body = request("DELETE", f"/v2/{PACKAGE}/manifests/{image_digest}", token=package_push)
check("DENIED: a published version's image is never deleted", status == 403 and "DENIED" in codes(body), (status, body))

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
