# Data mixture for nemo2, exported by mixlaw <version> from export_opt.json.
# Checked with NeMo 2.x (nemo.collections.llm.gpt.data.PreTrainingDataModule(paths=...); blend parsed by megatron-core 0.16.1 get_blend_from_list).
# weights are shares of TOKENS (NeMo (Megatron datasets) blends samples of seq_len tokens, so these weights are token shares)
# left out domain(s) with zero share: legal
# no --paths for books, math: wrote placeholder path(s) data/<domain>_text_document; edit them
# Predicted total validation loss at this mixture: 2.8123 (baseline 2.8500)
from nemo.collections.llm.gpt.data import PreTrainingDataModule

# NeMo 2.x takes the blend as a flat [weight, prefix, ...] list (megatron-core get_blend_from_list).
PATHS = [
    '0.451234', 's3://bucket/web',  # web
    '0.248766', 'data/code',  # code
    '0.2', 'data/books_text_document',  # books
    '0.1', 'data/math_text_document',  # math
]


def data_module(**kwargs) -> PreTrainingDataModule:
    """The mixture as a NeMo 2.x data module; kwargs: seq_length, tokenizer, global_batch_size, ..."""
    return PreTrainingDataModule(paths=PATHS, **kwargs)
