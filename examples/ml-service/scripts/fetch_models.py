"""Fetches model files into --out, through the HuggingFace cache.

The cache (HF_HOME) is a build cache mount: the first build downloads, the
next ones find the files there. MODEL_SOURCE=stub writes a small stand-in
model into the cache instead (for offline CI).
"""
import argparse
import json
import os
import pathlib
import shutil

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
args = parser.parse_args()

model_id = os.environ["MODEL_ID"]
hf_home = pathlib.Path(os.environ.get("HF_HOME", "/root/.cache/huggingface"))
cached = hf_home / "strata-models" / model_id.replace("/", "--")

if (cached / "config.json").exists():
    print(f"cache hit: {model_id}")
elif os.environ.get("MODEL_SOURCE") == "stub":
    cached.mkdir(parents=True, exist_ok=True)
    (cached / "config.json").write_text(json.dumps({"model": model_id, "dim": 4}))
    (cached / "weights.txt").write_text("0.1 0.2 0.3 0.4\n")
    print(f"cache miss: wrote stand-in for {model_id}")
else:
    from huggingface_hub import snapshot_download

    path = snapshot_download(model_id, cache_dir=str(hf_home / "hub"))
    shutil.copytree(path, cached, dirs_exist_ok=True)
    print(f"cache miss: downloaded {model_id}")

out = pathlib.Path(args.out) / model_id.replace("/", "--")
shutil.copytree(cached, out, dirs_exist_ok=True)
