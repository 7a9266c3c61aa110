"""Proxy training engine: corpus, tokenizer, small GPT, mixture loader, trainer and resumable sweeps.

Importing this package does not import torch; only `model`, `trainer` and a running sweep do.

    from mixlaw.train.sweep import load_sweep_config, prepare_sweep, run_sweep, LocalExecutor
    cfg = load_sweep_config("mixlaw/configs/demo.yaml")
    corpus, runs = prepare_sweep(cfg)
    table = run_sweep(runs, "out/demo", executor=LocalExecutor(workers=2))
"""
