"""A CUDA engine freezes its start-up heap out of the garbage collector's sight; an engine dropped later
must still leave nothing behind (frozen cycles are never collected)."""

from __future__ import annotations

import gc
import json

from pagedllm import LLM
from pagedllm.core.block_pool import BlockPool
from pagedllm.engine.llm_engine import freeze_startup_heap

TINY = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
    "max_position_embeddings": 256,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
}


def test_a_frozen_block_pool_dropped_later_frees_its_blocks():
    pool = BlockPool(1000)
    pool.free_queue.remove(pool.blocks[10])  # a block out of the queue, the rest linked both ways
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        del pool
        assert gc.get_freeze_count() <= frozen - 1000  # every block went by reference counting
    finally:
        gc.unfreeze()


def test_an_engine_dropped_after_the_freeze_leaves_no_blocks_behind(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    llm = LLM(model=str(config), load_format="dummy", device="cpu", max_model_len=64)
    llm.generate([[5, 6, 7]] * 3, use_tqdm=False)
    num_blocks = llm.engine.scheduler.kv.num_blocks
    assert num_blocks > 1000
    freeze_startup_heap()
    try:
        frozen = gc.get_freeze_count()
        del llm
        assert gc.get_freeze_count() <= frozen - num_blocks
    finally:
        gc.unfreeze()
