"""huggingface_hub, Hugging Face's own Python client, against Tandem's mock hub
and against caches Tandem wrote. Driven by tests/hub/hf_client.rs, which sets
HF_ENDPOINT, HF_HUB_CACHE and HF_HOME.

    python hf_client.py SPEC_JSON

SPEC_JSON: {"local_only": bool, "requests": [{"repo": str, "files": [str],
"token": str | null}]}. For each request: snapshot_download(repo) (every
file of the repo), then hf_hub_download(repo, file) for each file, all with
local_files_only=local_only. Prints one JSON object: the client's version
and, per request, the snapshot folder and each file's path and sha256.
"""

import hashlib
import json
import sys

import huggingface_hub
from huggingface_hub import hf_hub_download, snapshot_download


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main():
    spec = json.loads(sys.argv[1])
    local_only = spec["local_only"]
    results = []
    for request in spec["requests"]:
        repo = request["repo"]
        # False: send no token at all (not even one stored in HF_HOME).
        token = request.get("token") or False
        snapshot = snapshot_download(repo, token=token, local_files_only=local_only)
        files = {}
        for name in request["files"]:
            path = hf_hub_download(repo, name, token=token, local_files_only=local_only)
            files[name] = {"path": path, "sha256": sha256(path)}
        results.append({"repo": repo, "snapshot": snapshot, "files": files})
    print(json.dumps({"version": huggingface_hub.__version__, "results": results}))


if __name__ == "__main__":
    main()
