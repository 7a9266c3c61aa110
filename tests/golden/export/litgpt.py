# Data mixture for litgpt, exported by mixlaw <version> from export_opt.json.
# Checked with litdata 0.2.76 (litdata.streaming.CombinedStreamingDataset).
# weights are shares of TOKENS: exact when every example is a fixed-length token block (pre-tokenized, packed data); for whole-document examples use --unit documents --avg-doc-tokens FILE
# left out domain(s) with zero share: legal
# no --paths for books, math: wrote placeholder path(s) data/<domain>; edit them
# Predicted total validation loss at this mixture: 2.8123 (baseline 2.8500)
from litdata.streaming import CombinedStreamingDataset, StreamingDataset, TokensLoader

BLOCK_SIZE = 2049  # seq_len + 1 (placeholder: pass --seq-len to set it)
INPUT_DIRS = [
    's3://bucket/web',  # web
    'data/code',  # code
    'data/books',  # books
    'data/math',  # math
]
WEIGHTS = (0.451234, 0.248766, 0.2, 0.1)

train_dataset = CombinedStreamingDataset(
    datasets=[StreamingDataset(input_dir=d, item_loader=TokensLoader(block_size=BLOCK_SIZE), shuffle=True)
              for d in INPUT_DIRS],
    seed=42,
    weights=WEIGHTS,
    iterate_over_all=False,  # required with weights
)
