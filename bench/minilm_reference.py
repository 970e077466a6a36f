"""Write tests/data/minilm_reference.json: sentence-transformers' vectors for a few hard texts.

Run where sentence-transformers (and so torch) happens to be installed:
    python -m bench.minilm_reference
The product never needs it; the tests compare the numpy forward pass against this file.
"""

from __future__ import annotations

import json
from pathlib import Path

TEXTS = [
    "A cat sleeps on the sofa.",
    "Crème brûlée, naïve café — ÉTÉ à Zürich!",  # accents stripped, lowercased
    "東京の天気は？ 中文字符 and emoji 🙂 mixed in",  # CJK split per character, unknown tokens
    "tabs\tand\r\nnewlines,   odd\u200bspacing\u0000and control chars",
    "supercalifragilisticexpialidocious " + "x" * 120,  # word pieces, then a >100-char word
    " ".join(f"word{n}" for n in range(400)),  # longer than 256 tokens: truncated
    "",
]
REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "minilm_reference.json"


def main() -> None:
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    from agent.retrieval.embeddings import bundled_model_path

    model = SentenceTransformer(str(bundled_model_path()), device="cpu", local_files_only=True)
    vectors = model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    payload = {
        "producer": f"sentence-transformers {sentence_transformers.__version__}, "
        f"torch {torch.__version__}, python -m bench.minilm_reference",
        "texts": TEXTS,
        "vectors": [[float(f"{x:.8g}") for x in row] for row in vectors.tolist()],
    }
    REFERENCE.write_text(json.dumps(payload, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
