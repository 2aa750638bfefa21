"""The cache of ONNX exports: load a model's checked export, exporting it first when there is none.

Kept apart from the encoder (qa/onnx_runtime.py) and the exporter (qa/onnx_export.py), which
both sit below it: the exporter checks its graph with the encoder, and this module uses both,
so neither imports the other's user. The exporter imports torch only when it runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path

from . import onnx_export
from .encoders import local_model_dir
from .onnx_runtime import EXPORT_VERSION, ExportError, OnnxEncoder

log = logging.getLogger(__name__)


def export_key(model_dir: Path) -> str:
    """A cache key for one model folder's files: names, sizes and modification times, and EXPORT_VERSION."""
    digest = hashlib.sha256(f"qa-onnx-export v{EXPORT_VERSION}\n{model_dir.resolve()}\n".encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and ".cache" not in p.parts):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def load_onnx(location: str, cache_dir: Path, allow_export: bool = True) -> OnnxEncoder:
    """The cached ONNX export of the model at `location`, exported and checked first if needed.

    Raises:
        ExportError: no usable export (the model is not local, cannot be exported,
            failed its check now or before, or the cache cannot be written).
    """
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as exc:
        raise ExportError(f"onnxruntime or tokenizers is not installed ({exc})") from exc
    model_dir = local_model_dir(location)
    if model_dir is None:
        raise ExportError(f"{location!r} is not a local model folder")
    folder = cache_dir / "onnx" / export_key(model_dir)
    record_path = folder / "export.json"
    if record_path.exists():
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {"ok": True}  # unreadable: treated as a damaged export below
        if not record.get("ok"):
            raise ExportError(f"an earlier export in {folder} failed its check: {record.get('error')}")
        try:
            encoder = OnnxEncoder(folder, record)
            encoder.check()
            return encoder
        except Exception as exc:  # a damaged cache entry: any failure to load or to reproduce the probe
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}" if str(exc) else type(exc).__name__
            if not allow_export:
                raise ExportError(f"the cached export in {folder} is damaged ({reason})") from exc
            log.warning("the cached ONNX export in %s is damaged (%s); exporting it again", folder, reason)
            shutil.rmtree(folder, ignore_errors=True)
    if not allow_export:
        raise ExportError(f"no ONNX export of {location} in {cache_dir}")
    log.info("exporting %s to ONNX in %s (once)", location, folder)
    staging = folder.with_name(f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}")
    try:
        try:
            record = {**onnx_export.export_onnx(model_dir, staging), "ok": True}
        except ExportError as exc:
            record = {"export_version": EXPORT_VERSION, "ok": False, "error": str(exc)}
            staging.mkdir(parents=True, exist_ok=True)
            for name in ("model.onnx", "tokenizer.json"):
                (staging / name).unlink(missing_ok=True)
        (staging / "export.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(staging, folder)
        except OSError:  # another process committed the same export first: use theirs
            if not record_path.exists():
                raise
    except OSError as exc:
        raise ExportError(f"cannot write the ONNX cache in {cache_dir} ({exc})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_onnx(location, cache_dir, allow_export=False)


